"""Open a results store without ever writing to it (``harness report``).

No schema, no migration, no journal mode change: ``mode=ro``, or
``immutable=1`` in a read-only folder where SQLite cannot create the
write-ahead log's index. A store written before a table or column existed
reads it as empty or NULL, through TEMP objects that live only in the
connection.
"""

from __future__ import annotations

import logging
import sqlite3
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

from harness.errors import StoreError

log = logging.getLogger(__name__)

# what SQLite says when mode=ro cannot create a WAL store's index (a read-only folder)
_NO_WAL_INDEX = ("unable to open", "readonly", "read-only")

NOT_A_STORE = "not a results store - expected the results.sqlite written by `harness run`"


def _connect(path: Path, flag: str) -> tuple[sqlite3.Connection, set[str]]:
    """Open ``path`` with the URI ``flag`` and return the connection with its table names."""
    uri = f"file:{urllib.parse.quote(str(path.resolve()))}?{flag}"
    conn = sqlite3.connect(uri, uri=True, timeout=30)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.Error:
        conn.close()
        raise
    return conn, tables


def open_readonly(
    path: Path, schema: str, migrated: Sequence[tuple[str, str]]
) -> sqlite3.Connection:
    """Open the store at ``path`` read-only and check it has the runs and results tables.

    ``schema`` is the store's ``CREATE TABLE IF NOT EXISTS`` script and
    ``migrated`` its (table, "name TYPE") columns added after first release.
    """
    if not path.is_file():
        raise StoreError(
            f"{path}: no results store here - expected the results.sqlite written by `harness run`"
        )
    try:
        conn, tables = _connect(path, "mode=ro")
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc):
            raise StoreError(f"{path}: {NOT_A_STORE}, got {exc}") from exc
        if not any(text in str(exc) for text in _NO_WAL_INDEX):  # e.g. "database is locked"
            raise StoreError(f"{path}: cannot open the results store read-only: {exc}") from exc
        try:  # a read-only folder where the WAL index cannot be created
            conn, tables = _connect(path, "immutable=1")
        except sqlite3.Error as again:
            raise StoreError(
                f"{path}: cannot open the results store read-only: {exc}; {again}"
            ) from again
        if Path(f"{path}-wal").exists():
            log.warning(
                "%s: opened as immutable (its folder is read-only); results still in its "
                "write-ahead log %s-wal are not seen",
                path,
                path,
            )
    if not {"runs", "results"} <= tables:
        conn.close()
        got = ", ".join(sorted(tables)) or "no tables"
        raise StoreError(f"{path}: {NOT_A_STORE}, got {got}")
    try:
        _shadow_missing(conn, tables, schema, migrated)
    except sqlite3.Error as exc:
        conn.close()
        raise StoreError(f"{path}: cannot read the results store: {exc}") from exc
    return conn


def _shadow_missing(
    conn: sqlite3.Connection,
    tables: set[str],
    schema: str,
    migrated: Sequence[tuple[str, str]],
) -> None:
    """Give an older store its missing tables and columns as TEMP objects (never written)."""
    for stmt in schema.split(";"):
        if "CREATE TABLE" not in stmt:
            continue
        name = stmt.split("EXISTS", 1)[1].split()[0]
        if name not in tables:
            conn.execute(stmt.replace("CREATE TABLE IF NOT EXISTS", "CREATE TEMP TABLE"))
    for table, column in migrated:
        names = {row[1] for row in conn.execute(f"PRAGMA main.table_info({table})")}
        if column.split()[0] not in names:
            conn.execute(
                f"CREATE TEMP VIEW {table} AS SELECT *, NULL AS {column.split()[0]} "
                f"FROM main.{table}"
            )
