"""``sli-provider history``: import Keptn's evaluations, list and invalidate stored ones."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sli_provider.adapters.history_store import (
    DEFAULT_HISTORY,
    HistoryError,
    HistoryStore,
    events_from_document,
)
from sli_provider.flags import CommandHelpFormatter
from sli_provider.keptn.timestamps import format_keptn

HISTORY_EPILOG = """\
exit codes: 0 done, 1 nothing matched (invalidate), 2 could not run. 'list' and 'invalidate'
never create a history: a missing file exits 2 and says so."""


def add_history_arguments(parser: argparse.ArgumentParser) -> None:
    history_help = "the SQLite history file"
    parser.add_argument(
        "--history", type=Path, default=DEFAULT_HISTORY, metavar="FILE", help=history_help
    )
    parser.epilog = HISTORY_EPILOG
    actions = parser.add_subparsers(dest="history_action", required=True, metavar="ACTION")
    imp = actions.add_parser(
        "import",
        help="load evaluation.finished events from Keptn",
        allow_abbrev=False,
        formatter_class=CommandHelpFormatter,
        description="Load evaluation.finished events (as mongodb-datastore returns them).\n"
        "With --project/--stage/--service the import is refused, and nothing stored, if an event\n"
        "names another scope; without them each event keeps its own scope.",
    )
    imp.add_argument("file", type=Path, help='{"events": [...]} or a JSON list, newest first')
    listing = actions.add_parser(
        "list",
        help="the stored evaluations of a scope, newest first",
        allow_abbrev=False,
        formatter_class=CommandHelpFormatter,
        description="One line per evaluation, newest first: the end of its window, result, score,\n"
        "id and Keptn context; '(invalidated)' marks one that is never compared with.",
    )
    invalidate = actions.add_parser(
        "invalidate",
        help="never compare with an evaluation again",
        allow_abbrev=False,
        formatter_class=CommandHelpFormatter,
    )
    for sub in (imp, listing, invalidate):
        # Also after the action, where users put it; SUPPRESS keeps a value given before it.
        sub.add_argument(
            "--history",
            type=Path,
            default=argparse.SUPPRESS,
            metavar="FILE",
            help=f"{history_help} (default: {DEFAULT_HISTORY})",
        )
        sub.epilog = HISTORY_EPILOG
    for sub, required, what in (
        (
            imp,
            False,
            "required of every event, which is refused otherwise; fills in what an event lacks",
        ),
        (listing, True, "of the evaluations to list"),
    ):
        for name in ("project", "stage", "service"):
            sub.add_argument(
                f"--{name}",
                dest=f"h_{name}",
                required=required,
                metavar=name.upper(),
                help=f"the Keptn {name} {what}",
            )
    which = invalidate.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", dest="h_id", metavar="ID", help="an evaluation's id (see list)")
    which.add_argument(
        "--context",
        dest="h_context",
        metavar="CONTEXT",
        help="every evaluation of this Keptn context (shkeptncontext)",
    )


def run_history(args: argparse.Namespace) -> int:
    try:
        with HistoryStore(args.history, create=args.history_action == "import") as store:
            if args.history_action == "import":
                try:
                    document = json.loads(args.file.read_text(encoding="utf-8"))
                except OSError as exc:
                    raise HistoryError(f"cannot read {args.file}: {exc.strerror}") from None
                except ValueError as exc:
                    raise HistoryError(f"cannot read {args.file}: not JSON: {exc}") from None
                added = store.import_events(
                    events_from_document(document),
                    project=args.h_project,
                    stage=args.h_stage,
                    service=args.h_service,
                )
                print(f"imported {added} evaluation(s) into {args.history}")
            elif args.history_action == "list":
                records = store.list(args.h_project, args.h_stage, args.h_service)
                for r in records:
                    mark = " (invalidated)" if r.invalidated else ""
                    print(
                        f"{format_keptn(r.time)}  {r.result:<7} {r.score:6.2f}%  {r.id}  "
                        f"{r.context}{mark}"
                    )
                if not records:  # on stderr: stdout stays one line per evaluation
                    scope = f"{args.h_project}/{args.h_stage}/{args.h_service}"
                    print(
                        f"no evaluations of {scope} in {args.history}: the history is empty "
                        "for this scope",
                        file=sys.stderr,
                    )
            else:
                count = store.invalidate(evaluation_id=args.h_id, context=args.h_context)
                if count == 0:
                    print("no such evaluation", file=sys.stderr)
                    return 1
                print(f"invalidated {count} evaluation(s)")
    except HistoryError as exc:
        print(f"sli-provider history: {exc}", file=sys.stderr)
        return 2
    return 0
