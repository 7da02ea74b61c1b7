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
from sli_provider.keptn.timestamps import format_keptn


def add_history_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--history", type=Path, default=DEFAULT_HISTORY, help="SQLite history")
    actions = parser.add_subparsers(dest="history_action", required=True)
    imp = actions.add_parser("import", help="load evaluation.finished events from Keptn")
    imp.add_argument("file", type=Path, help='{"events": [...]} or a JSON list, newest first')
    listing = actions.add_parser("list", help="the stored evaluations of a scope, newest first")
    invalidate = actions.add_parser("invalidate", help="never compare with an evaluation again")
    for sub, required in ((imp, False), (listing, True)):
        for name in ("project", "stage", "service"):
            sub.add_argument(f"--{name}", dest=f"h_{name}", required=required)
    which = invalidate.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", dest="h_id")
    which.add_argument("--context", dest="h_context")


def run_history(args: argparse.Namespace) -> int:
    try:
        with HistoryStore(args.history) as store:
            if args.history_action == "import":
                try:
                    document = json.loads(args.file.read_text())
                except (OSError, ValueError) as exc:
                    raise HistoryError(f"cannot read {args.file}: {exc}") from None
                added = store.import_events(
                    events_from_document(document),
                    project=args.h_project, stage=args.h_stage, service=args.h_service,
                )  # fmt: skip
                print(f"imported {added} evaluation(s) into {args.history}")
            elif args.history_action == "list":
                for r in store.list(args.h_project, args.h_stage, args.h_service):
                    mark = " (invalidated)" if r.invalidated else ""
                    print(f"{format_keptn(r.time)}  {r.result:<7} {r.score:6.2f}%  {r.id}  "
                          f"{r.context}{mark}")  # fmt: skip
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
