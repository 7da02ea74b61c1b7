"""Argo Rollouts' ``web`` metric provider, played as its source does (argoproj/argo-rollouts
9f8d111d, devkit/reference/argo-rollouts/SOURCE.md), for the subset the examples use.

* args: the template's ``spec.args`` merged with the rollout's (a template arg without a value
  that the rollout does not give: ``args.NAME was not resolved``); the metric is marshalled to
  JSON and every ``{{ tag }}`` replaced, the tag trimmed, by the JSON-escaped value of
  ``args.NAME``; an unknown tag fails (utils/template/template.go, utils/analysis/factory.go);
* the call (metricproviders/webmetric/webmetric.go): GET unless ``method``; ``body`` or
  ``jsonBody`` only with POST/PUT and not both; ``jsonBody`` adds ``Content-Type:
  application/json``; ``timeoutSeconds`` <= 0 is 10; a non-2xx status is an Error measurement;
  a body that is not JSON goes to the conditions as a string; else the value at ``jsonPath``
  (``{$}`` when unset; a path that finds nothing is an Error);
* the phase (utils/evaluate/evaluate.go): conditions are expr-lang expressions over ``result``.

The JSONPath and expr evaluators below know only what the examples need (field paths; ==, !=,
<, <=, >, >=, &&, ||, !, parentheses, string, number, bool and nil literals, member access) and
refuse anything else, so an example cannot use more than the stand-in checks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

SUCCESSFUL, FAILED, INCONCLUSIVE, ERROR = "Successful", "Failed", "Inconclusive", "Error"


class Unsupported(ValueError):
    """The example uses something this stand-in does not play."""


class MeasurementError(Exception):
    """What Argo records as an Error measurement, with its message."""


def load_template(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    if document.get("kind") not in ("AnalysisTemplate", "ClusterAnalysisTemplate"):
        raise Unsupported(f"{path} is not an AnalysisTemplate")
    return dict(document)


Secrets = Mapping[tuple[str, str], str]


def merged_args(
    template: Mapping[str, Any], given: Mapping[str, str], secrets: Secrets
) -> dict[str, str]:
    """MergeArgs and ResolveArgs: a rollout's arg sets the template's arg of that name; a
    ``valueFrom.secretKeyRef`` reads the key of a Secret in the namespace (``secrets``)."""
    values: dict[str, str] = {}
    for arg in template["spec"].get("args", []):
        value = given.get(arg["name"], arg.get("value"))
        source = arg.get("valueFrom")
        if value is None and source is not None:
            if set(source) != {"secretKeyRef"}:
                raise Unsupported(f"arg {arg['name']}: valueFrom {sorted(source)}")
            ref = source["secretKeyRef"]
            value = secrets.get((ref["name"], ref["key"]))
            if value is None:
                raise MeasurementError(f"secret {ref['name']!r} has no key {ref['key']!r}")
        if value is None:
            raise MeasurementError(f"args.{arg['name']} was not resolved")
        values[arg["name"]] = value
    return values


def resolve_metric(
    template: Mapping[str, Any], name: str, args: Mapping[str, str], secrets: Secrets | None = None
) -> dict[str, Any]:
    """ResolveMetricArgs: substitution in the metric's JSON (ResolveQuotedArgs)."""
    (metric,) = [m for m in template["spec"]["metrics"] if m["name"] == name]
    resolved = merged_args(template, args, secrets or {})
    values = {f"args.{k}": json.dumps(v)[1:-1] for k, v in resolved.items()}
    text = json.dumps(metric)
    out, position = [], 0
    while (opening := text.find("{{", position)) != -1:
        closing = text.find("}}", opening + 2)
        if closing == -1:
            raise MeasurementError("cannot find end tag '}}'")
        tag = text[opening + 2 : closing]
        if tag.strip() not in values:
            raise MeasurementError(f"failed to resolve {{{{{tag}}}}}")
        out += [text[position:opening], values[tag.strip()]]
        position = closing + 2
    out.append(text[position:])
    return dict(json.loads("".join(out)))


@dataclass(frozen=True)
class Measurement:
    phase: str
    value: str = ""
    message: str = ""
    status: int | None = None
    request: Mapping[str, Any] | None = None
    body: str = ""


async def measure(metric: Mapping[str, Any]) -> Measurement:
    """One measurement of a resolved metric with a ``web`` provider."""
    web = metric["provider"].get("web")
    if web is None:
        raise Unsupported("only the web provider is played")
    for key in web:
        if key not in (
            "url",
            "method",
            "headers",
            "body",
            "jsonBody",
            "timeoutSeconds",
            "jsonPath",
        ):
            raise Unsupported(f"web.{key}")
    method = web.get("method") or "GET"
    body, json_body = web.get("body", ""), web.get("jsonBody")
    request: dict[str, Any] = {"method": method, "url": web["url"]}
    try:
        if body and json_body is not None:
            raise MeasurementError(
                "use either Body or JSONBody; both cannot exists for WebMetric payload"
            )
        if (body or json_body is not None) and method == "GET":
            raise MeasurementError(
                "Body/JSONBody can only be used with POST or PUT WebMetric Method types"
            )
        headers = {h["key"]: h["value"] for h in web.get("headers", [])}
        data: bytes | None = body.encode() if body else None
        if json_body is not None:
            data = json.dumps(json_body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        request.update(headers=headers, body=data.decode() if data else None)
        timeout = web.get("timeoutSeconds") or 0
        timeout = 10 if timeout <= 0 else timeout
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.request(
                    method,
                    web["url"],
                    data=data,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=timeout),
                ) as response,
            ):
                status, text = response.status, await response.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise MeasurementError(f"{exc or type(exc).__name__}") from None
        if status < 200 or status >= 300:
            return Measurement(
                ERROR,
                message=f"received non 2xx response code: {status}",
                status=status,
                request=request,
                body=text,
            )
        try:
            document = json.loads(text)
        except ValueError:
            return Measurement(
                evaluate_result(text, metric), text, status=status, request=request, body=text
            )
        found = json_path(web.get("jsonPath") or "{$}", document)
        value = json.dumps(found, separators=(",", ":"))
        return Measurement(
            evaluate_result(found, metric), value, status=status, request=request, body=text
        )
    except MeasurementError as exc:
        return Measurement(ERROR, message=str(exc), request=request)


def evaluate_result(result: Any, metric: Mapping[str, Any]) -> str:
    success_text = metric.get("successCondition", "")
    failure_text = metric.get("failureCondition", "")
    success = condition(success_text, result) if success_text else False
    failure = condition(failure_text, result) if failure_text else False
    if not success_text and not failure_text:
        return SUCCESSFUL
    if success_text and not failure_text:
        failure = not success
    elif failure_text and not success_text:
        success = not failure
    if failure:
        return FAILED
    if not success:
        return INCONCLUSIVE
    return SUCCESSFUL


# --- Kubernetes JSONPath: one action of field names only --------------------------------------

_PATH = re.compile(r"\{\s*\$?((?:\.[A-Za-z0-9_-]+)*)\s*\}")


def json_path(template: str, document: Any) -> Any:
    match = _PATH.fullmatch(template.strip())
    if match is None:
        raise Unsupported(f"JSONPath {template!r}: only {{$}} and {{$.field.field}} are played")
    value = document
    for field in filter(None, match.group(1).split(".")):
        if not isinstance(value, dict) or field not in value:
            raise MeasurementError(f"Could not find JSONPath in body: {field} is not found")
        value = value[field]
    return value


# --- expr-lang: the subset of conditions the examples use --------------------------------------

_TOKEN = re.compile(
    r'\s*(?:(?P<number>\d+(?:\.\d+)?)|(?P<string>"(?:[^"\\]|\\.)*")|(?P<op>==|!=|<=|>=|&&|\|\||[<>!().])'
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*))"
)


class _Parser:
    def __init__(self, text: str, result: Any) -> None:
        self.tokens: list[tuple[str, str]] = []
        position = 0
        while position < len(text.rstrip()):
            match = _TOKEN.match(text, position)
            if match is None or match.end() == position:
                raise Unsupported(f"expr {text!r}: cannot read {text[position:]!r}")
            kind = match.lastgroup
            assert kind is not None
            self.tokens.append((kind, match.group(kind)))
            position = match.end()
        self.index, self.result, self.text = 0, result, text

    def peek(self) -> str | None:
        return self.tokens[self.index][1] if self.index < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def parse(self) -> Any:
        value = self.disjunction()
        if self.index != len(self.tokens):
            raise Unsupported(f"expr {self.text!r}: unexpected {self.peek()!r}")
        return value

    def disjunction(self) -> Any:
        value = self.conjunction()
        while self.peek() == "||":
            self.take()
            right = self.conjunction()
            value = _boolean(value, "||") or _boolean(right, "||")
        return value

    def conjunction(self) -> Any:
        value = self.comparison()
        while self.peek() == "&&":
            self.take()
            right = self.comparison()
            value = _boolean(value, "&&") and _boolean(right, "&&")
        return value

    def comparison(self) -> Any:
        left = self.unary()
        operator = self.peek()
        if operator not in ("==", "!=", "<", "<=", ">", ">="):
            return left
        self.take()
        right = self.unary()
        if operator == "==":
            return _equal(left, right)
        if operator == "!=":
            return not _equal(left, right)
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (left, right))
        strings = all(isinstance(v, str) for v in (left, right))
        if not (numbers or strings):
            raise MeasurementError(f"invalid operation: {left!r} {operator} {right!r}")
        return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[
            operator
        ]

    def unary(self) -> Any:
        if self.peek() == "!":
            self.take()
            return not _boolean(self.unary(), "!")
        return self.member()

    def member(self) -> Any:
        value = self.primary()
        while self.peek() == ".":
            self.take()
            kind, field = self.take()
            if kind != "name":
                raise Unsupported(f"expr {self.text!r}: member {field!r}")
            if value is None:
                raise MeasurementError(f"cannot fetch {field} from nil")
            if not isinstance(value, dict):
                raise MeasurementError(f"cannot fetch {field} from {type(value).__name__}")
            value = value.get(field)  # a missing key of a map is nil in expr
        return value

    def primary(self) -> Any:
        kind, text = self.take()
        if kind == "number":
            return float(text) if "." in text else int(text)
        if kind == "string":
            return json.loads(text)
        if text == "(":
            value = self.disjunction()
            if self.take()[1] != ")":
                raise Unsupported(f"expr {self.text!r}: ')' expected")
            return value
        if kind == "name":
            known = {"true": True, "false": False, "nil": None, "result": self.result}
            if text in known:
                return known[text]
        raise Unsupported(f"expr {self.text!r}: {text!r} is not played")


def _boolean(value: Any, operator: str) -> bool:
    if not isinstance(value, bool):
        raise MeasurementError(f"invalid operation: {operator} on {type(value).__name__}")
    return value


def _equal(left: Any, right: Any) -> bool:
    if isinstance(left, int | float) and isinstance(right, int | float):
        if isinstance(left, bool) or isinstance(right, bool):
            return left is right
        return float(left) == float(right)
    return type(left) is type(right) and bool(left == right)


def condition(text: str, result: Any) -> bool:
    """EvalCondition: an error in evaluating is an Error measurement; a non-bool too."""
    value = _Parser(text, result).parse()
    if not isinstance(value, bool):
        raise MeasurementError(f"expected bool, but got {type(value).__name__}")
    return value


async def run_metric(
    template: Mapping[str, Any], name: str, args: Mapping[str, str], secrets: Secrets | None = None
) -> Measurement:
    """Resolve the metric's args, then measure once."""
    try:
        metric = resolve_metric(template, name, args, secrets)
    except MeasurementError as exc:
        return Measurement(ERROR, message=str(exc))
    return await measure(metric)


def metrics_of(template: Mapping[str, Any], provider: str) -> Sequence[str]:
    return [m["name"] for m in template["spec"]["metrics"] if provider in m["provider"]]


# --- the job provider: the Job's one container, run here as a process ---------------------------

IMAGE_ENTRYPOINT = ("sli-provider",)  # the Dockerfile's ENTRYPOINT


async def run_job(
    metric: Mapping[str, Any], mounts: Mapping[str, Path], *, timeout: float = 180
) -> Measurement:
    """metricproviders/job: the Job succeeded → Successful, failed → Failed. The resolved Job's
    single container runs as a local ``sli-provider`` process (the image's entrypoint) with its
    ``env``; each ``volumeMounts`` path is ``mounts[path]`` here (a ConfigMap's or a claim's
    files), so the container's paths are rewritten to those directories and nothing else."""
    import asyncio

    from devkit.cli import command_env, sli_provider_command

    job = metric["provider"].get("job")
    if job is None:
        raise Unsupported("not a job metric")
    pod = job["spec"]["template"]["spec"]
    if pod.get("restartPolicy") != "Never" or job["spec"].get("backoffLimit") != 0:
        raise Unsupported("only a Job that runs once (backoffLimit 0, restartPolicy Never)")
    (container,) = pod["containers"]
    if "command" in container:
        raise Unsupported("a command replacing the image's entrypoint")
    mounted = {m["mountPath"]: mounts[m["mountPath"]] for m in container.get("volumeMounts", [])}

    def local(arg: str) -> str:
        for path, directory in mounted.items():
            arg = arg.replace(f"={path}/", f"={directory}/")
            if arg.startswith(f"{path}/"):
                arg = str(directory) + arg[len(path) :]
        return arg

    for item in container.get("env", []):
        if set(item) != {"name", "value"}:
            raise Unsupported(f"env {item.get('name')}: only plain values")
    env = {item["name"]: item["value"] for item in container.get("env", [])}
    args = [local(a) for a in container.get("args", [])]
    process = await asyncio.create_subprocess_exec(
        *sli_provider_command(*args),
        env=command_env(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout)
    phase = SUCCESSFUL if process.returncode == 0 else FAILED
    return Measurement(
        phase,
        str(process.returncode),
        message=out.decode()[-3000:],
        request={"args": container.get("args", [])},
    )
