"""A results store as written before the ``confidence`` and ``traceback`` columns existed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

OLD_TABLES = """
CREATE TABLE runs (
    run_id INTEGER PRIMARY KEY AUTOINCREMENT,
    benchmark TEXT, spec_file TEXT, spec_hash TEXT, started REAL, finished REAL,
    harness_version TEXT, git_hash TEXT, device TEXT, status TEXT
);
CREATE TABLE results (
    run_id INTEGER, dataset TEXT, model TEXT, explainer TEXT, metric TEXT,
    kind TEXT, status TEXT, value REAL, ci_low REAL, ci_high REAL, n INTEGER,
    higher_is_better INTEGER, reason TEXT, error TEXT, seconds REAL, device TEXT,
    plugins TEXT, spec_hash TEXT, notes TEXT, stage_key TEXT,
    PRIMARY KEY (run_id, dataset, model, explainer, metric)
);
"""


def write_old_store(path: Path, rows: str) -> None:
    """Create the old tables at ``path`` and run the ``rows`` SQL (its INSERTs) on them."""
    conn = sqlite3.connect(path)
    with conn:
        conn.executescript(OLD_TABLES + rows)
    conn.close()
