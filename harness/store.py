"""The results store: an embedded SQLite database in the output folder.

One row per run, one row per (run, cell) result, the per-row scores behind
each explanation result, the curves some metrics return, and the paired
comparisons between explainers. Every cell is written in one transaction, so a
killed run keeps exactly the cells it finished.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harness.errors import StoreError
from harness.store_readonly import open_readonly

log = logging.getLogger(__name__)

DB_NAME = "results.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY AUTOINCREMENT,
    benchmark TEXT, spec_file TEXT, spec_hash TEXT, started REAL, finished REAL,
    harness_version TEXT, git_hash TEXT, device TEXT, status TEXT, confidence REAL
);
CREATE TABLE IF NOT EXISTS results (
    run_id INTEGER, dataset TEXT, model TEXT, explainer TEXT, metric TEXT,
    kind TEXT, status TEXT, value REAL, ci_low REAL, ci_high REAL, n INTEGER,
    higher_is_better INTEGER, reason TEXT, error TEXT, seconds REAL, device TEXT,
    plugins TEXT, spec_hash TEXT, notes TEXT, stage_key TEXT, traceback TEXT,
    PRIMARY KEY (run_id, dataset, model, explainer, metric)
);
CREATE TABLE IF NOT EXISTS sample_scores (
    run_id INTEGER, dataset TEXT, model TEXT, explainer TEXT, metric TEXT,
    sample_id TEXT, target INTEGER, value REAL,
    PRIMARY KEY (run_id, dataset, model, explainer, metric, sample_id, target)
);
CREATE TABLE IF NOT EXISTS curves (
    run_id INTEGER, dataset TEXT, model TEXT, explainer TEXT, metric TEXT,
    name TEXT, data TEXT,
    PRIMARY KEY (run_id, dataset, model, explainer, metric, name)
);
CREATE TABLE IF NOT EXISTS gallery (
    run_id INTEGER, dataset TEXT, model TEXT, explainer TEXT, sample_id TEXT, target INTEGER,
    image TEXT, overlay TEXT,
    PRIMARY KEY (run_id, dataset, model, explainer, sample_id, target)
);
CREATE TABLE IF NOT EXISTS comparisons (
    run_id INTEGER, dataset TEXT, model TEXT, metric TEXT, explainer_a TEXT, explainer_b TEXT,
    n INTEGER, statistic REAL, p_value REAL, p_adjusted REAL, better TEXT, test TEXT,
    PRIMARY KEY (run_id, dataset, model, metric, explainer_a, explainer_b)
);
"""

# columns added to stores after their tables were first written: (table, "name TYPE")
MIGRATED = (("runs", "confidence REAL"), ("results", "traceback TEXT"))


@dataclass
class ResultRow:
    """One stored result: a cell and its outcome (ok, skipped or failed)."""

    dataset: str
    model: str
    explainer: str
    metric: str
    status: str
    kind: str = ""
    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0
    higher_is_better: bool | None = None
    reason: str = ""
    error: str = ""
    seconds: float = 0.0
    device: str = ""
    plugins: dict[str, str] = field(default_factory=dict)
    spec_hash: str = ""
    notes: dict[str, float] = field(default_factory=dict)
    stage_key: str = ""
    traceback: str = ""


FINISHED = ("ok", "failed")  # the statuses of a run that reached its end


class ResultSink(Protocol):
    """Where a group's results go: the store, or a recorder in a remote worker."""

    def write_cell(
        self,
        run_id: int,
        row: ResultRow,
        samples: Iterable[tuple[str, int, float]] = (),
        curves: Mapping[str, Any] | None = None,
    ) -> None:
        """Write one cell's result, per-row scores and curves."""

    def write_gallery(
        self, run_id: int, cell: tuple[str, str, str], items: Sequence[tuple[str, int, str, str]]
    ) -> None:
        """Write (sample id, target, input PNG, overlay PNG) thumbnails of one explainer."""


class Store:
    """Transactional access to ``results.sqlite``.

    ``readonly=True`` opens an existing store without ever writing to it (no
    schema, no migration, no journal mode change), for ``harness report``; a
    store written before a column existed reads that column as NULL.
    """

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        if readonly:
            self.conn = open_readonly(self.path, SCHEMA, MIGRATED)
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=30)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.executescript(SCHEMA)
            for table, column in MIGRATED:  # stores written before these columns existed
                self._add_column(table, column)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open the results store: {exc}") from exc

    @contextlib.contextmanager
    def _writing(self, what: str) -> Iterator[sqlite3.Connection]:
        """One transaction; an SQLite error becomes a StoreError naming the store and ``what``."""
        try:
            with self.conn:
                yield self.conn
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot {what}: {exc}") from exc

    def _add_column(self, table: str, column: str) -> None:
        """Add ``column`` ("name TYPE") to ``table`` of a store created before it existed."""
        names = {row[1] for row in self.conn.execute(f"PRAGMA table_info({table})")}
        if column.split()[0] not in names:
            self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {column}")

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def start_run(self, meta: Mapping[str, Any]) -> int:
        """Record a new run and return its id."""
        with self._writing("record a new run") as conn:
            cur = conn.execute(
                "INSERT INTO runs (benchmark, spec_file, spec_hash, started, harness_version,"
                " git_hash, device, status, confidence) VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?)",
                (
                    meta.get("benchmark"),
                    meta.get("spec_file"),
                    meta.get("spec_hash"),
                    time.time(),
                    meta.get("harness_version"),
                    meta.get("git_hash"),
                    meta.get("device"),
                    meta.get("confidence"),
                ),
            )
        return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, status: str) -> None:
        """Mark a run finished with ``status``."""
        with self._writing(f"mark run {run_id} finished") as conn:
            conn.execute(
                "UPDATE runs SET finished = ?, status = ? WHERE run_id = ?",
                (time.time(), status, run_id),
            )

    def write_cell(
        self,
        run_id: int,
        row: ResultRow,
        samples: Iterable[tuple[str, int, float]] = (),
        curves: Mapping[str, Any] | None = None,
    ) -> None:
        """Write one cell's result, per-row scores and curves in one transaction."""
        data = asdict(row)
        data["plugins"] = json.dumps(row.plugins, sort_keys=True)
        data["notes"] = json.dumps(row.notes, sort_keys=True)
        data["higher_is_better"] = (
            None if row.higher_is_better is None else int(row.higher_is_better)
        )
        cell = (run_id, row.dataset, row.model, row.explainer, row.metric)
        cols = ", ".join(["run_id", *data])
        marks = ", ".join("?" * (len(data) + 1))
        with self._writing(f"write the result of cell {'/'.join(cell[1:])}") as conn:
            conn.execute(
                f"INSERT OR REPLACE INTO results ({cols}) VALUES ({marks})",
                (run_id, *data.values()),
            )
            conn.execute(
                "DELETE FROM sample_scores WHERE run_id=? AND dataset=? AND model=? AND explainer=? AND metric=?",
                cell,
            )
            conn.executemany(
                "INSERT OR REPLACE INTO sample_scores VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(*cell, sid, int(t), float(v)) for sid, t, v in samples],
            )
            for name, value in (curves or {}).items():
                conn.execute(
                    "INSERT OR REPLACE INTO curves VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (*cell, name, json.dumps(value)),
                )

    def write_comparisons(self, run_id: int, rows: Sequence[tuple[Any, ...]]) -> None:
        """Replace the paired comparisons of a run."""
        with self._writing(f"write the comparisons of run {run_id}") as conn:
            conn.execute("DELETE FROM comparisons WHERE run_id = ?", (run_id,))
            conn.executemany(
                "INSERT INTO comparisons VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(run_id, *r) for r in rows],
            )

    def write_gallery(
        self, run_id: int, cell: tuple[str, str, str], items: Sequence[tuple[str, int, str, str]]
    ) -> None:
        """Store (sample id, target, input PNG, overlay PNG) thumbnails of one explainer."""
        with self._writing(f"write the gallery of {'/'.join(cell)}") as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO gallery VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(run_id, *cell, sid, int(t), img, ov) for sid, t, img, ov in items],
            )

    def latest_run(self, *, finished: bool = False) -> dict[str, Any]:
        """Return the most recent run as a dict; only finished runs when ``finished``.

        A run that was interrupted (or is still going) keeps the status 'running'.

        Raises
        ------
        StoreError
            When the store holds no such run.
        """
        where = f" WHERE status IN {FINISHED}" if finished else ""
        rows = self.query(f"SELECT * FROM runs{where} ORDER BY run_id DESC LIMIT 1")
        if not rows:
            which = "finished run" if finished else "run"
            raise StoreError(
                f"{self.path}: the store holds no {which} yet; run `harness run SPEC` first"
            )
        return rows[0]

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run a read query and return rows as dicts."""
        try:
            cur = self.conn.execute(sql, tuple(params))
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot read the results store: {exc}") from exc
