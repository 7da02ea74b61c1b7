{{/*
Keptn's distributor in NATS mode (keptn-protocol.md §3.1): it queue-subscribes to the topics,
forwards each event to the service on 127.0.0.1:<service.port>, and offers the API proxy the
service replies through (DISTRIBUTOR_URL). Only the variables the distributor reads are set here;
KEPTN_API_ENDPOINT stays unset, which is what selects NATS mode.
*/}}
{{- define "k6-sli-provider.distributorContainer" -}}
- name: distributor
  image: "{{ .Values.distributor.image.repository }}:{{ .Values.distributor.image.tag }}"
  imagePullPolicy: {{ .Values.distributor.image.pullPolicy }}
  {{- if .Values.distributor.nativeSidecar }}
  restartPolicy: Always
  {{- end }}
  env:
    - name: PUBSUB_URL
      value: {{ .Values.distributor.pubsubUrl | quote }}
    - name: PUBSUB_TOPIC
      value: {{ include "k6-sli-provider.topics" . | quote }}
    - name: PUBSUB_RECIPIENT
      value: "127.0.0.1"
    - name: PUBSUB_RECIPIENT_PORT
      value: {{ .Values.service.port | quote }}
    - name: PUBSUB_GROUP
      value: {{ include "k6-sli-provider.queueGroup" . | quote }}
    - name: API_PROXY_PORT
      value: {{ .Values.distributor.apiProxyPort | quote }}
    - name: PROJECT_FILTER
      value: {{ .Values.distributor.projectFilter | quote }}
    - name: STAGE_FILTER
      value: {{ .Values.distributor.stageFilter | quote }}
    - name: SERVICE_FILTER
      value: {{ .Values.distributor.serviceFilter | quote }}
    - name: VERSION
      value: {{ .Chart.AppVersion | quote }}
    - name: DISTRIBUTOR_VERSION
      value: {{ .Values.distributor.image.tag | quote }}
    - name: K8S_DEPLOYMENT_NAME
      value: {{ include "k6-sli-provider.fullname" . | quote }}
    - name: K8S_NAMESPACE
      valueFrom:
        fieldRef:
          fieldPath: metadata.namespace
    - name: K8S_POD_NAME
      valueFrom:
        fieldRef:
          fieldPath: metadata.name
    - name: K8S_NODE_NAME
      valueFrom:
        fieldRef:
          fieldPath: spec.nodeName
  {{- with .Values.distributor.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.distributor.securityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
