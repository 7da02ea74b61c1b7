"""sli-provider: the Keptn SLI provider and k6 runner (serve), and the same SLIs from the
shell: preview them, or gate a k6 run on slo.yaml in any CI (run, evaluate, history, check)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from sli_provider import __version__
from sli_provider.commands.check import add_check_arguments, run_check
from sli_provider.commands.gate import run_evaluate, run_gate
from sli_provider.commands.gate_arguments import add_evaluate_arguments, add_run_arguments
from sli_provider.commands.history import add_history_arguments, run_history
from sli_provider.config import ConfigError, settings_from
from sli_provider.config.command_settings import COMMAND_HELP, COMMAND_SETTINGS
from sli_provider.config.flags import CommandHelpFormatter, add_arguments
from sli_provider.errors import SliProviderError
from sli_provider.logs import configure_command_logging, configure_logging
from sli_provider.pipeline.evaluation import ProviderUnavailable
from sli_provider.service.preview import (
    PreviewError,
    results_as_json,
    results_as_table,
    window_from_query,
)
from sli_provider.service.server import serve
from sli_provider.sli.local_file import outside_keptn
from sli_provider.wiring import Configuration, load_configuration, preview_once

# Outside a Keptn cluster these read ./k6/sli.yaml (and `serve` ./slo.yaml): sli/local_file.py.
LOCAL_COMMANDS = frozenset({"run", "evaluate", "preview", "serve"})
PREVIEW_EXIT_CODES = (
    "exit codes: 0 every indicator has a value, 1 an indicator has none, 2 could not run "
    "(arguments, settings, sli.yaml, Prometheus)"
)


def _parser() -> argparse.ArgumentParser:
    # No abbreviations: --prometheus-password would otherwise be taken for
    # --prometheus-password-file, and the password for a path in an error message.
    parser = argparse.ArgumentParser(prog="sli-provider", description=__doc__, allow_abbrev=False)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve_cmd = commands.add_parser(
        "serve", help="run the HTTP service (Keptn SLI provider)", allow_abbrev=False
    )
    add_arguments(serve_cmd, grouped=False)

    preview_cmd = commands.add_parser(
        "preview", help="render and run indicators, print a table", allow_abbrev=False
    )
    add_arguments(preview_cmd, shown=COMMAND_SETTINGS["preview"], help_for=COMMAND_HELP)
    preview_cmd.epilog = f"{PREVIEW_EXIT_CODES}\n\n{preview_cmd.epilog}"
    for name in ("project", "stage", "service"):
        preview_cmd.add_argument(
            f"--{name}",
            dest=f"q_{name}",
            required=True,
            help=f"the Keptn {name} (scope of k6's series)",
        )
    for name in ("start", "end"):
        preview_cmd.add_argument(
            f"--{name}",
            dest=f"q_{name}",
            required=True,
            metavar="TIME",
            help=f"window {name}, e.g. 2026-11-29T10:00:00Z",
        )
    preview_cmd.add_argument(
        "--context", dest="q_context", default="", help="only the k6 run of this keptn_context"
    )
    preview_cmd.add_argument(
        "--deployment",
        dest="q_deployment",
        default="",
        help="the deployment, for $DEPLOYMENT in queries",
    )
    preview_cmd.add_argument(
        "--indicators",
        dest="q_indicators",
        action="append",
        default=[],
        metavar="NAMES",
        help="comma-separated names (default: every known indicator)",
    )
    preview_cmd.add_argument(
        "--filter",
        dest="q_filters",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a customFilter, as slo.yaml's filter",
    )
    preview_cmd.add_argument(
        "--label",
        dest="q_labels",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an event label",
    )
    preview_cmd.add_argument("--json", action="store_true", help="print JSON instead of a table")

    evaluate_cmd = commands.add_parser(
        "evaluate",
        help="score slo.yaml like Keptn's lighthouse (values from a file or Prometheus)",
        allow_abbrev=False,
    )
    add_arguments(evaluate_cmd, shown=COMMAND_SETTINGS["evaluate"], help_for=COMMAND_HELP)
    add_evaluate_arguments(evaluate_cmd)
    run_cmd = commands.add_parser(
        "run",
        help="run k6, fetch its SLIs, score slo.yaml, store and report: a CI quality gate",
        allow_abbrev=False,
    )
    add_arguments(run_cmd, shown=COMMAND_SETTINGS["run"], help_for=COMMAND_HELP)
    add_run_arguments(run_cmd)
    history_cmd = commands.add_parser(
        "history",
        help="the gate's stored evaluations",
        allow_abbrev=False,
        formatter_class=CommandHelpFormatter,
    )
    add_history_arguments(history_cmd)
    check_cmd = commands.add_parser(
        "check",
        help="validate slo.yaml and sli.yaml: every problem, with line numbers",
        allow_abbrev=False,
    )
    add_check_arguments(check_cmd)
    return parser


# What a shell reports for a command stopped by SIGPIPE: the reader (`| head -1`) went away.
READER_GONE = 128 + 13


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Exit codes: 0 done (or passed), 1 failed, 2 could not run (a configuration error among them:
    one line on stderr, never a traceback); 141 stdout was closed early, quietly."""
    try:
        code = _main(argv, environ)
        sys.stdout.flush()  # here, where a closed pipe can still be handled
        return code
    except BrokenPipeError:
        # Python would complain again when it flushes stdout at exit; nothing is left to read it.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return READER_GONE


def _main(argv: Sequence[str] | None, environ: Mapping[str, str] | None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "history":
        return run_history(args)
    if args.command == "check":
        return run_check(args)
    flags = vars(args)
    try:
        # The one place settings are read and the files they name are parsed, once per process.
        env = os.environ if environ is None else environ
        settings = settings_from(env, flags)
        runs_k6 = args.command == "run" or (args.command == "serve" and settings.runner_enabled)
        configuration = load_configuration(settings, k6=runs_k6)
        # Events from Keptn's NATS come with Keptn's resources, configured or not.
        keptn_events = args.command == "serve" and settings.nats_url
        if args.command in LOCAL_COMMANDS and outside_keptn(env, flags) and not keptn_events:
            configuration = dataclasses.replace(configuration, local_dir=Path.cwd())
    except ConfigError as exc:
        print(f"sli-provider: configuration error: {exc}", file=sys.stderr)
        return 2
    if args.command == "serve":
        configure_logging(settings.log_level)
    else:
        asked = "LOG_LEVEL" in env or flags.get("log_level") is not None
        configure_command_logging(settings.log_level, asked=asked)
    try:
        return _run(args.command, configuration, args)
    except SliProviderError as exc:
        print(f"sli-provider {args.command}: {exc}", file=sys.stderr)
        return 2


def _run(command: str, configuration: Configuration, args: argparse.Namespace) -> int:
    if command == "serve":
        asyncio.run(serve(configuration))
        return 0
    if command == "evaluate":
        return run_evaluate(configuration, args)
    if command == "run":
        return run_gate(configuration, args)
    return _preview(configuration, vars(args))


def _preview(configuration: Configuration, flags: Mapping[str, object]) -> int:
    fields = {k[2:]: str(v) for k, v in flags.items() if k.startswith("q_") and isinstance(v, str)}
    multi = {
        "indicators": list(flags["q_indicators"]),  # type: ignore[call-overload]
        "customFilters": list(flags["q_filters"]),  # type: ignore[call-overload]
        "labels": list(flags["q_labels"]),  # type: ignore[call-overload]
    }
    try:
        window = window_from_query(fields, multi)
    except PreviewError as exc:
        print(f"sli-provider preview: {exc}", file=sys.stderr)
        return 2
    try:
        results, store = asyncio.run(preview_once(configuration, window))
    except ProviderUnavailable as exc:  # sli.yaml or Prometheus: no indicator could be asked
        print(f"sli-provider preview: {exc}", file=sys.stderr)
        return 2
    if flags.get("json"):
        print(json.dumps(results_as_json(results, store), indent=2, allow_nan=False))
    else:
        print(results_as_table(results, store))
    return 0 if all(r.success for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
