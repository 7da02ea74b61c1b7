"""The options of ``sli-provider evaluate`` and ``sli-provider run`` (commands/gate.py runs them)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from sli_provider.adapters.history_store import DEFAULT_HISTORY
from sli_provider.gate.verdict import THRESHOLD_POLICIES
from sli_provider.runner.workloads import DEFAULT_TIMEOUT_SECONDS, WorkloadError, parse_duration

EXIT_CODES = "exit codes: 0 pass (and warning, unless --strict), 1 fail, 2 the gate could not run"


def add_gate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = "\n\n".join(filter(None, [EXIT_CODES, parser.epilog]))
    parser.add_argument(
        "--slo", type=Path, required=True, metavar="FILE", help="the slo.yaml to score against"
    )
    for name in ("project", "stage", "service"):
        parser.add_argument(
            f"--{name}",
            dest=f"g_{name}",
            required=True,
            help=f"the Keptn {name}: scope of k6's series and of the history",
        )
    parser.add_argument(
        "--format", choices=("table", "json", "html"), default="table", help="the report's format"
    )
    parser.add_argument(
        "--output",
        type=Path,
        metavar="FILE",
        help="write the report here (required for html; default: stdout)",
    )
    parser.add_argument("--strict", action="store_true", help="a warning exits 1 too")
    parser.add_argument(
        "--history",
        type=Path,
        default=DEFAULT_HISTORY,
        metavar="FILE",
        help="the SQLite history of earlier evaluations",
    )
    parser.add_argument("--no-store", action="store_true", help="do not add this evaluation")


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    add_gate_arguments(parser)
    parser.add_argument(
        "--values",
        type=Path,
        metavar="FILE",
        help="indicator values: a JSON list or a get-sli.finished event",
    )
    parser.add_argument(
        "--start",
        dest="g_start",
        metavar="TIME",
        help="window start (with --end: fetch from Prometheus), e.g. 2026-11-29T10:00:00Z",
    )
    parser.add_argument("--end", dest="g_end", metavar="TIME", help="window end")
    parser.add_argument(
        "--context", dest="g_context", default="", help="the k6 run's keptn_context"
    )


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    add_gate_arguments(parser)
    parser.add_argument("--script", type=Path, required=True, metavar="FILE", help="the k6 script")
    parser.add_argument("--target", default="", metavar="URL", help="TARGET_URL for the script")
    parser.add_argument(
        "--vus", type=_positive_int, metavar="N", help="virtual users (default: the script's own)"
    )
    parser.add_argument(
        "--duration",
        type=_duration,
        metavar="DURATION",
        help="test duration, e.g. 30s (default: the script's own)",
    )
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="passed to the script"
    )
    parser.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=float(DEFAULT_TIMEOUT_SECONDS),
        metavar="SECONDS",
        help="seconds before k6 is killed (default: %(default)g)",
    )
    parser.add_argument(
        "--k6",
        metavar="NAME_OR_PATH",
        help="a K6_BINARIES name or a k6 executable (default: chosen by the "
        "script's k6/x/... imports)",
    )
    parser.add_argument(
        "--thresholds",
        choices=THRESHOLD_POLICIES,
        default="fail",
        help="what crossed k6 thresholds do to the gate (default: %(default)s)",
    )


# Checked while parsing, so a typo is refused before any check or k6 run, not by k6 itself.
def _positive_int(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return int(text)


def _duration(text: str) -> str:
    try:
        parse_duration(text)
    except WorkloadError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _positive_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not seconds > 0 or math.isinf(seconds):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return seconds
