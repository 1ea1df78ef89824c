"""``harness report DIR``: rebuild the leaderboard files from the store, or show failed cells."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``report`` arguments."""
    parser.add_argument(
        "results", type=Path, help="output folder of a run (holding results.sqlite)"
    )
    parser.add_argument(
        "--tracebacks",
        action="store_true",
        help="print each failed cell's error and traceback instead of rewriting the reports",
    )


def execute(args: argparse.Namespace) -> int:
    """Rewrite the report files of the latest finished run, or print its failed cells."""
    from harness.errors import StoreError
    from harness.reports import report_run, write_reports
    from harness.reports.failures import failure_text
    from harness.store import DB_NAME, Store

    db = args.results / DB_NAME
    if not db.exists():
        raise StoreError(
            f"{db}: no results store here; expected the output folder of `harness run`"
        )
    store = Store(db, readonly=True)  # never writes: works on a read-only copy
    try:
        if args.tracebacks:
            print(failure_text(store, report_run(store)["run_id"]), end="")
            return 0
        for path in write_reports(store, args.results):
            print(f"wrote {path}")
    finally:
        store.close()
    return 0
