"""A store opened read-only is never written; store and report write errors are StoreErrors."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from _old_store import write_old_store

from harness import store_readonly
from harness.cli import main
from harness.errors import StoreError
from harness.reports import write_reports
from harness.reports.failures import failure_text
from harness.store import ResultRow, Store


def _row(explainer: str, status: str = "ok", **kw: object) -> ResultRow:
    return ResultRow(
        dataset="d",
        model="m",
        explainer=explainer,
        metric="loc.mass",
        status=status,
        kind="localisation",
        higher_is_better=True,
        **kw,  # type: ignore[arg-type]
    )


def _store(folder: Path) -> Path:
    store = Store(folder / "results.sqlite")
    run = store.start_run({"benchmark": "demo", "spec_file": "demo.yaml", "spec_hash": "abc"})
    store.write_cell(run, _row("e0", value=0.5, ci_low=0.1, ci_high=0.9, n=4))
    store.write_cell(run, _row("bad", "failed", error="boom", traceback="Traceback\nX: boom\n"))
    store.finish_run(run, "failed")
    store.close()
    return folder / "results.sqlite"


def _snapshot(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def test_a_readonly_store_is_never_written_and_reports_are_written_from_it(
    tmp_path: Path,
) -> None:
    db = _store(tmp_path)
    before = _snapshot(db)
    store = Store(db, readonly=True)
    out = tmp_path / "reports"
    files = write_reports(store, out)
    assert {f.name for f in files} == {
        "leaderboard.md",
        "leaderboard.csv",
        "results.json",
        "leaderboard.html",
        "comparisons.csv",
    }
    assert "Traceback\nX: boom" in failure_text(store, 1)
    with pytest.raises(StoreError, match=f"{db}: cannot write the result of cell d/m/e1/loc.mass"):
        store.write_cell(1, _row("e1"))
    store.close()
    assert _snapshot(db) == before


def test_harness_report_leaves_the_store_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = _store(tmp_path)
    before = _snapshot(db)
    assert main(["report", str(tmp_path), "--tracebacks"]) == 0
    assert "d / m / bad / loc.mass: boom" in capsys.readouterr().out
    assert main(["report", str(tmp_path)]) == 0
    assert _snapshot(db) == before


@pytest.mark.parametrize("content", [b"", b"this is not sqlite at all" * 10])
def test_a_file_that_is_not_a_store_is_refused_and_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    db = tmp_path / "results.sqlite"
    db.write_bytes(content)
    with pytest.raises(StoreError, match="not a results store"):
        Store(db, readonly=True)
    assert main(["report", str(tmp_path)]) == 2
    assert "not a results store" in capsys.readouterr().err
    assert db.read_bytes() == content


def test_an_old_store_is_read_without_migrating_it(tmp_path: Path) -> None:
    db = tmp_path / "results.sqlite"
    write_old_store(
        db,
        """
        INSERT INTO runs (benchmark, status) VALUES ('old', 'failed');
        INSERT INTO results (run_id, dataset, model, explainer, metric, kind, status, error)
            VALUES (1, 'd', 'm', 'old', 'loc.mass', 'localisation', 'failed', 'KeyError: x');
        """,
    )
    before = _snapshot(db)
    store = Store(db, readonly=True)
    assert store.latest_run()["confidence"] is None
    assert "(no traceback stored for this cell)" in failure_text(store, 1)
    write_reports(store, tmp_path / "reports")
    store.close()
    assert "KeyError: x" in (tmp_path / "reports" / "leaderboard.md").read_text()
    assert _snapshot(db) == before


def test_an_sqlite_error_while_writing_is_a_store_error_naming_the_store(tmp_path: Path) -> None:
    db = _store(tmp_path)
    store = Store(db)
    store.conn.execute("DROP TABLE comparisons")
    with pytest.raises(StoreError, match=f"{db}: cannot write the comparisons of run 1: "):
        store.write_comparisons(1, [])
    store.close()


def test_a_report_path_that_is_a_folder_is_a_store_error_naming_it(tmp_path: Path) -> None:
    store = Store(_store(tmp_path))
    (tmp_path / "leaderboard.md").mkdir()
    with pytest.raises(StoreError, match="leaderboard.md: cannot write the report"):
        write_reports(store, tmp_path)
    store.close()
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_report_write_that_fails_keeps_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(_store(tmp_path))
    write_reports(store, tmp_path)
    previous = (tmp_path / "leaderboard.csv").read_text()

    def full_disk(self: pd.DataFrame, path: Path, **kw: object) -> None:
        Path(path).write_text(previous[: len(previous) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", full_disk)
    with pytest.raises(StoreError, match="leaderboard.csv: cannot write the report: No space"):
        write_reports(store, tmp_path)
    store.close()
    assert (tmp_path / "leaderboard.csv").read_text() == previous
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_folder_where_mode_ro_fails_is_read_as_immutable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = _store(tmp_path)
    before = _snapshot(db)
    real = store_readonly._connect

    def no_wal_index(path: Path, flag: str) -> tuple[sqlite3.Connection, set[str]]:
        if flag == "mode=ro":  # what a read-only bind mount does: the -shm cannot be created
            raise sqlite3.OperationalError("unable to open database file")
        return real(path, flag)

    monkeypatch.setattr(store_readonly, "_connect", no_wal_index)
    store = Store(db, readonly=True)
    assert store.latest_run()["status"] == "failed"
    write_reports(store, tmp_path / "reports")
    store.close()
    assert _snapshot(db) == before


def test_a_locked_store_is_not_read_as_immutable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a folder where the WAL index cannot be made falls back; a lock is an error."""
    db = _store(tmp_path)
    flags: list[str] = []

    def locked(path: Path, flag: str) -> tuple[sqlite3.Connection, set[str]]:
        flags.append(flag)
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(store_readonly, "_connect", locked)
    with pytest.raises(StoreError, match="cannot open the results store read-only: database is"):
        Store(db, readonly=True)
    assert flags == ["mode=ro"]
