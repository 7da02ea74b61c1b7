"""``sli-provider evaluate`` and ``sli-provider run``: the quality gate without Keptn.

Exit codes: 0 pass (and warning, unless ``--strict``), 1 fail, 2 the gate could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sli_provider.adapters.history_store import HistoryError, HistoryStore
from sli_provider.commands.gate_k6 import GateError, check_script, check_script_env, run_k6
from sli_provider.commands.preflight import (
    PreflightError,
    check_history,
    check_services,
    check_slo_text,
)
from sli_provider.gate import parse_slo
from sli_provider.gate.document import gate_document
from sli_provider.gate.judgement import judge, record_for
from sli_provider.gate.junit import render_junit
from sli_provider.gate.markdown import render_markdown
from sli_provider.gate.records import StoredEvaluation
from sli_provider.gate.slo import SLO, SLOParseError
from sli_provider.gate.table import render_table
from sli_provider.gate.verdict import (
    GateWarning,
    K6Run,
    ThresholdResult,
    Verdict,
)
from sli_provider.k6.thresholds import format_value
from sli_provider.keptn.timestamps import TimestampError, format_keptn, parse_keptn
from sli_provider.metrics import ServiceMetrics
from sli_provider.pipeline.evaluation import (
    MeasuredIndicator,
    ProviderUnavailable,
)
from sli_provider.ports.querier import PrometheusError
from sli_provider.sli.run_series import run_has_series
from sli_provider.sli.window import SLIWindow
from sli_provider.wiring import Configuration, evaluate_once, make_prometheus

PASS, FAIL, CANNOT_RUN = 0, 1, 2


def run_evaluate(configuration: Configuration, args: argparse.Namespace) -> int:
    args.step_summary = configuration.settings.github_step_summary
    try:
        _check_output(args)
        slo_text, slo = _read_slo(args.slo)
        warnings: list[GateWarning] = []
        if args.values is not None and (args.g_start or args.g_end):
            raise GateError(
                "--values and --start/--end exclude each other: the values are either read "
                "from the file or fetched from Prometheus for the window"
            )
        if args.values is not None:
            values, status, result, message, start, end = _values_from_file(args.values)
        elif args.g_start and args.g_end:
            start, end = args.g_start, args.g_end
            values = asyncio.run(
                _fetch(configuration, args, slo, start, end, args.g_context, warnings)
            )
            status, result, message = "succeeded", "pass", ""
        else:
            raise GateError("give --values FILE, or --start and --end to fetch from Prometheus")
        return _score_and_report(
            args,
            slo_text,
            slo,
            values,
            status,
            result,
            message,
            start,
            end,
            args.g_context,
            warnings,
        )
    except GateError as exc:
        print(f"sli-provider evaluate: {exc}", file=sys.stderr)
        return CANNOT_RUN


def run_gate(configuration: Configuration, args: argparse.Namespace) -> int:
    """Run k6 through the runner core, fetch that run's SLIs, score, store and report."""
    args.step_summary = configuration.settings.github_step_summary
    try:
        _check_output(args)
        slo_text, slo = _read_slo(args.slo)
        check_script(args.script)
        check_script_env(args)
        _preflight(configuration, args, slo_text)
        context = str(uuid.uuid4())
        run = asyncio.run(run_k6(configuration, args, context))
        crossed_note = " (thresholds crossed)" if run.thresholds_crossed else ""
        print(f"k6 exited with {run.returncode}{crossed_note}", file=sys.stderr)
        for threshold in run.crossed_thresholds:
            print(f"threshold crossed: {threshold.metric}: {threshold.expression}", file=sys.stderr)
        missing = run.missing_series_message()
        if missing is not None:
            raise GateError(missing)
        start, end = format_keptn(run.outcome.started_at), format_keptn(run.outcome.ended_at)
        values = asyncio.run(_fetch(configuration, args, slo, start, end, context, []))
        thresholds = tuple(
            ThresholdResult(
                t.metric, t.expression, t.held, "" if t.value is None else format_value(t.value)
            )
            for t in run.outcome.summary.thresholds
        )
        k6 = K6Run(run.returncode, thresholds)
        return _score_and_report(
            args, slo_text, slo, values, "succeeded", "pass", "", start, end, context, [], k6=k6
        )
    except GateError as exc:
        print(f"sli-provider run: {exc}", file=sys.stderr)
        return CANNOT_RUN


def _check_output(args: argparse.Namespace) -> None:
    # Checked first: `run` would otherwise find it only after the whole k6 test.
    if args.format == "html" and args.output is None:
        raise GateError("--format html needs --output FILE")


def _preflight(configuration: Configuration, args: argparse.Namespace, slo_text: str) -> None:
    """Everything the gate needs after k6, checked before k6 runs (commands/preflight.py)."""
    try:
        check_slo_text(slo_text)
        asyncio.run(check_services(configuration, args.g_project, args.g_stage, args.g_service))
        check_history(args.history)  # last: it creates a missing history
    except PreflightError as exc:
        raise GateError(f"before starting k6: {exc}") from None


def _read_slo(path: Path) -> tuple[str, SLO | None]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise GateError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return text, parse_slo(text)
    except SLOParseError:
        return text, None  # scored anyway: evaluate() reports it the way lighthouse does


def _values_from_file(path: Path) -> tuple[list[Any], str, str, str, str, str]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise GateError(f"cannot read values from {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise GateError(f"cannot read values from {path}: not JSON: {exc}") from None
    if isinstance(document, list):
        return document, "succeeded", "pass", "", "", ""
    data = document.get("data") if isinstance(document, Mapping) else None
    if not isinstance(data, Mapping):
        data = {}
    section = data.get("get-sli")
    if not isinstance(section, Mapping) or not isinstance(section.get("indicatorValues"), list):
        raise GateError(
            f"{path}: expected a JSON list of indicator values or a get-sli.finished event"
        )
    return (
        section["indicatorValues"],
        str(data.get("status", "succeeded")),
        str(data.get("result", "pass")),
        str(data.get("message", "")),
        str(section.get("start", "")),
        str(section.get("end", "")),
    )


async def _fetch(
    configuration: Configuration,
    args: argparse.Namespace,
    slo: SLO | None,
    start: str,
    end: str,
    context: str,
    warnings: list[GateWarning],
) -> list[dict[str, Any]]:
    """The SLIs the slo.yaml names, fetched exactly as the service fetches them.

    A ``context`` without series in the window adds a warning: the built-ins then describe
    every run of the scope, not that one.
    """
    try:
        start_s, end_s = parse_keptn(start), parse_keptn(end)
    except TimestampError as exc:
        raise GateError(str(exc)) from None
    if end_s < start_s:
        raise GateError(f"the window's end ({end}) is before its start ({start})")
    indicators = tuple(dict.fromkeys(o.sli for o in slo.objectives)) if slo else ()
    window = SLIWindow(
        project=args.g_project,
        stage=args.g_stage,
        service=args.g_service,
        start_s=start_s,
        end_s=end_s,
        indicators=indicators,
        custom_filters=tuple((slo.filter or {}).items()) if slo else (),
        context=context,
    )
    try:
        if context and not await _context_has_series(configuration, window):
            warnings.append(
                GateWarning(
                    "context_not_found",
                    f"no k6 series of context {context!r} in the window; the built-in SLIs use "
                    f"every run of {window.project}/{window.stage}/{window.service}",
                )
            )
        results: list[MeasuredIndicator] = await evaluate_once(configuration, window)
    except ProviderUnavailable as exc:
        raise GateError(str(exc)) from None
    return [
        {"metric": r.metric, "value": r.value, "success": r.success, "message": r.message}
        for r in results
    ]


async def _context_has_series(configuration: Configuration, window: SLIWindow) -> bool:
    prometheus = make_prometheus(configuration, ServiceMetrics())
    try:
        return await run_has_series(prometheus.for_project(window.project), window)
    except PrometheusError as exc:
        raise GateError(f"cannot ask Prometheus for the run's series: {exc}") from None
    finally:
        await prometheus.aclose()


def _score_and_report(
    args: argparse.Namespace,
    slo_text: str,
    slo: SLO | None,
    values: Sequence[Any],
    status: str,
    result: str,
    message: str,
    start: str,
    end: str,
    context: str,
    warnings: list[GateWarning],
    *,
    k6: K6Run | None = None,
) -> int:
    scope = (args.g_project, args.g_stage, args.g_service)
    try:
        with HistoryStore(args.history) as store:
            history = store.list(*scope)
            verdict = judge(
                slo_text,
                values,
                history,
                start=start,
                end=end,
                warnings=warnings,
                k6=k6,
                policy=getattr(args, "thresholds", "fail"),
                strict=args.strict,
                get_sli_status=status,
                get_sli_result=result,
                get_sli_message=message,
            )
            if not args.no_store:
                record = record_for(verdict, scope, context, _stored_time(end))
                store.add(record)
                history = [record, *history]
    except HistoryError as exc:
        raise GateError(str(exc)) from None
    for warning in verdict.warnings:
        print(f"warning: {warning.message}", file=sys.stderr)
    _report(args, verdict, history, scope)
    return verdict.exit_code()


def _stored_time(end: str) -> float:
    try:
        return parse_keptn(end) if end else time.time()
    except TimestampError:
        return time.time()


def append_step_summary(path: Path | None, verdict: Verdict, scope: tuple[str, str, str]) -> None:
    """GITHUB_STEP_SUMMARY: the Markdown summary appended (a job's steps share the file)."""
    if path is None:
        return
    try:
        with path.open("a", encoding="utf-8") as summary:
            summary.write(render_markdown(verdict, scope="/".join(scope)))
    except OSError as exc:
        print(
            f"warning: cannot append to GITHUB_STEP_SUMMARY {path}: {exc.strerror}",
            file=sys.stderr,
        )


def _report(
    args: argparse.Namespace,
    verdict: Verdict,
    history: list[StoredEvaluation],
    scope: tuple[str, str, str],
) -> None:
    if args.format == "json":
        text = json.dumps(gate_document(verdict), indent=2, allow_nan=False)
    elif args.format == "junit":
        text = render_junit(verdict, scope="/".join(scope))
    elif args.format == "html":
        from sli_provider.gate.html_report import render_html  # only the html format needs it

        text = render_html(
            verdict.evaluation,
            history,
            project=scope[0],
            stage=scope[1],
            service=scope[2],
            verdict=verdict,
        )
    else:
        text = "\n".join(
            [
                render_table(verdict.evaluation, scope="/".join(scope), verdict=verdict),
                *verdict.text_lines(with_warnings=args.output is not None),
            ]
        )
    append_step_summary(getattr(args, "step_summary", None), verdict, scope)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
        print(f"verdict: {verdict.word}; report written to {args.output}", file=sys.stderr)
    else:
        print(text)
