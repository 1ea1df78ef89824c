"""``harness check NAME``: run the conformance kit on a registered plugin."""

from __future__ import annotations

import argparse

KINDS = ("datasets", "models", "explainers", "metrics")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``check`` arguments."""
    parser.add_argument("name", help="registered plugin name, e.g. captum.grad_cam")
    parser.add_argument(
        "--kind", choices=KINDS, default=None, help="plugin kind when a name is ambiguous"
    )


def execute(args: argparse.Namespace) -> int:
    """Print one line per check; exit 1 when a check failed."""
    from harness.testing import run_checks_for_name

    results = run_checks_for_name(args.kind, args.name)
    failed = 0
    for r in results:
        status = "PASS" if r.passed else "FAIL"
        failed += not r.passed
        print(f"{status} {r.name}" + (f": {r.message}" if r.message and not r.passed else ""))
    print(f"{args.name}: {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0
