{{/* Names and labels. */}}
{{- define "k6-sli-provider.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "k6-sli-provider.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "k6-sli-provider.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "k6-sli-provider.selectorLabels" -}}
app.kubernetes.io/name: {{ include "k6-sli-provider.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "k6-sli-provider.labels" -}}
helm.sh/chart: {{ include "k6-sli-provider.chart" . }}
{{ include "k6-sli-provider.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: keptn
{{- end }}

{{- define "k6-sli-provider.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "k6-sli-provider.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "k6-sli-provider.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The Secret the chart creates from the sensitive values (see secret.yaml). */}}
{{- define "k6-sli-provider.secretName" -}}
{{- include "k6-sli-provider.fullname" . }}
{{- end }}

{{/* NATS queue group of the service or of the distributor: nats.queueGroup, else sliProvider. */}}
{{- define "k6-sli-provider.queueGroup" -}}
{{- default .Values.sliProvider .Values.nats.queueGroup }}
{{- end }}

{{/* prometheus.headers as PROMETHEUS_HEADERS: Name=value,Name=value (sorted by name). */}}
{{- define "k6-sli-provider.prometheusHeaders" -}}
{{- $pairs := list }}
{{- range $name, $value := .Values.prometheus.headers }}
{{- $pairs = append $pairs (printf "%s=%s" $name $value) }}
{{- end }}
{{- join "," $pairs }}
{{- end }}

{{/* The event types delivered to the service. */}}
{{- define "k6-sli-provider.topics" -}}
{{- $topics := list "sh.keptn.event.get-sli.triggered" }}
{{- if .Values.runner.enabled }}
{{- $topics = append $topics "sh.keptn.event.test.triggered" }}
{{- end }}
{{- join "," $topics }}
{{- end }}

{{/* true when the chart's Secret has at least one key. */}}
{{- define "k6-sli-provider.hasSecret" -}}
{{- $v := .Values }}
{{- if or (and $v.keptnApi.token (not $v.keptnApi.tokenSecret.name)) (and $v.prometheus.password (not $v.prometheus.passwordSecret.name)) (and $v.prometheus.bearerToken (not $v.prometheus.bearerTokenSecret.name)) (and $v.preview.token (not $v.preview.tokenSecret.name)) (and $v.prometheus.projects.config (not $v.prometheus.projects.secretName)) }}true{{ end }}
{{- end }}

{{/*
Combinations the service would refuse at start-up, or that would go wrong silently, fail here.
*/}}
{{- define "k6-sli-provider.validate" -}}
{{- $v := .Values }}
{{- if and $v.distributor.enabled $v.nats.url }}
{{- fail "distributor.enabled and nats.url are both set: each event would be delivered twice. Set nats.url=\"\" to use the distributor." }}
{{- end }}
{{- if and $v.journal.enabled $v.nats.url (eq $v.nats.delivery "jetstream") }}
{{- fail "journal.enabled is for the distributor or nats.delivery=core: with jetstream the replicas already share a journal in NATS (the service refuses JOURNAL_PATH with it)" }}
{{- end }}
{{- if and $v.journal.enabled $v.journal.existingClaim (gt (int $v.replicaCount) 1) }}
{{- fail "journal.existingClaim with replicaCount > 1 would share one journal between pods; a journal belongs to one process (leave existingClaim empty for an emptyDir per pod)" }}
{{- end }}
{{- if and $v.gate.history.existingClaim (gt (int $v.replicaCount) 1) }}
{{- fail "gate.history.existingClaim with replicaCount > 1: a SQLite history belongs to one pod (each replica would keep and compare with its own)" }}
{{- end }}
{{- if le (float64 $v.terminationGracePeriodSeconds) (float64 $v.shutdownGraceSeconds) }}
{{- fail "terminationGracePeriodSeconds must be larger than shutdownGraceSeconds, or Kubernetes kills the pod before events in flight are answered" }}
{{- end }}
{{- if and $v.distributor.enabled (eq (int $v.distributor.apiProxyPort) (int $v.service.port)) }}
{{- fail "distributor.apiProxyPort must differ from service.port (both listen in the same pod)" }}
{{- end }}
{{- if and $v.keptnApi.token $v.keptnApi.tokenSecret.name }}
{{- fail "give keptnApi.token or keptnApi.tokenSecret.name, not both" }}
{{- end }}
{{- if and (or $v.keptnApi.token $v.keptnApi.tokenSecret.name) (not $v.keptnApi.url) }}
{{- fail "a Keptn API token needs keptnApi.url (the service refuses KEPTN_API_TOKEN without KEPTN_API_URL)" }}
{{- end }}
{{- if and $v.prometheus.password $v.prometheus.passwordSecret.name }}
{{- fail "give prometheus.password or prometheus.passwordSecret.name, not both" }}
{{- end }}
{{- if and (or $v.prometheus.password $v.prometheus.passwordSecret.name) (not $v.prometheus.username) }}
{{- fail "a Prometheus password needs prometheus.username (the service refuses PROMETHEUS_PASSWORD without PROMETHEUS_USERNAME)" }}
{{- end }}
{{- if and $v.prometheus.bearerToken $v.prometheus.bearerTokenSecret.name }}
{{- fail "give prometheus.bearerToken or prometheus.bearerTokenSecret.name, not both" }}
{{- end }}
{{- $bearer := or $v.prometheus.bearerToken $v.prometheus.bearerTokenSecret.name }}
{{- if and $bearer $v.prometheus.bearerTokenFile }}
{{- fail "give a Prometheus bearer token or prometheus.bearerTokenFile, not both" }}
{{- end }}
{{- if and (or $bearer $v.prometheus.bearerTokenFile) $v.prometheus.username }}
{{- fail "give Prometheus basic auth (username) or a bearer token, not both" }}
{{- end }}
{{- if ne (not $v.prometheus.tls.certKey) (not $v.prometheus.tls.keyKey) }}
{{- fail "prometheus.tls.certKey and prometheus.tls.keyKey go together (mTLS needs both)" }}
{{- end }}
{{- if and $v.prometheus.projects.config $v.prometheus.projects.secretName }}
{{- fail "give prometheus.projects.config or prometheus.projects.secretName, not both" }}
{{- end }}
{{- if and $v.preview.token $v.preview.tokenSecret.name }}
{{- fail "give preview.token or preview.tokenSecret.name, not both" }}
{{- end }}
{{- end }}

{{/* K6_BINARIES from runner.k6Binaries: name=path of each copy in the shared emptyDir. */}}
{{- define "k6-sli-provider.k6Binaries" -}}
{{- $pairs := list }}
{{- range . }}
{{- $pairs = append $pairs (printf "%s=/opt/k6-binaries/%s" .name .name) }}
{{- end }}
{{- join "," $pairs }}
{{- end }}

{{/*
Namespace of the TestRuns and of the Role that allows them.
*/}}
{{- define "k6-sli-provider.k6OperatorNamespace" -}}
{{- .Values.k6Operator.namespace | default .Release.Namespace }}
{{- end }}
