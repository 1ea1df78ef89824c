"""``harness report DIR``: rebuild leaderboard.md, leaderboard.csv and results.json from the store."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``report`` arguments."""
    parser.add_argument(
        "results", type=Path, help="output folder of a run (holding results.sqlite)"
    )


def execute(args: argparse.Namespace) -> int:
    """Rewrite the report files of the latest run in the store."""
    from harness.errors import StoreError
    from harness.reports import write_reports
    from harness.store import DB_NAME, Store

    db = args.results / DB_NAME
    if not db.exists():
        raise StoreError(
            f"{db}: no results store here; expected the output folder of `harness run`"
        )
    store = Store(db)
    try:
        for path in write_reports(store, args.results):
            print(f"wrote {path}")
    finally:
        store.close()
    return 0
