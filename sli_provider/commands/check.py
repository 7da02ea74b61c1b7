"""``sli-provider check --slo slo.yaml [--sli sli.yaml]``: every problem, with its line.

Exit codes: 0 both files are clean, 1 a problem was found, 2 a file cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from sli_provider.gate.lint import Problem, sli_problems, slo_problems

CLEAN, PROBLEMS, CANNOT_READ = 0, 1, 2


def add_check_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Validate slo.yaml and sli.yaml and print every problem as file:line."
    parser.epilog = (
        "exit codes: 0 clean (prints ok: ...), 1 problems found, 2 a file cannot be read"
    )
    parser.add_argument("--slo", type=Path, metavar="FILE", help="an slo.yaml to validate")
    parser.add_argument("--sli", type=Path, metavar="FILE", help="an sli.yaml to validate")


def run_check(args: argparse.Namespace) -> int:
    checks: list[tuple[Path, Callable[[str], list[Problem]]]] = []
    if args.slo is not None:
        checks.append((args.slo, slo_problems))
    if args.sli is not None:
        checks.append((args.sli, sli_problems))
    if not checks:
        print("sli-provider check: give --slo FILE and/or --sli FILE", file=sys.stderr)
        return CANNOT_READ
    found = 0
    for path, problems_of in checks:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            print(f"sli-provider check: cannot read {path}: {exc.strerror}", file=sys.stderr)
            return CANNOT_READ
        except UnicodeDecodeError:
            print(f"sli-provider check: cannot read {path}: not UTF-8 text", file=sys.stderr)
            return CANNOT_READ
        for problem in problems_of(text):
            print(f"{path}:{problem.line}: {problem.message}")
            found += 1
    if found:
        print(f"{found} problem{'s' if found != 1 else ''} found", file=sys.stderr)
        return PROBLEMS
    print("ok: " + ", ".join(str(path) for path, _ in checks))
    return CLEAN
