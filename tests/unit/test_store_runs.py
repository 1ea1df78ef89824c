"""Reports use the latest finished run; cells keep their tracebacks; old stores migrate."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from _old_store import write_old_store

from harness.cli import main
from harness.reports import INCOMPLETE, write_reports
from harness.reports.failures import failure_text
from harness.store import ResultRow, Store


def _cells(store: Store, run: int, n: int, *, failed: str = "") -> None:
    for i in range(n):
        row = ResultRow(
            dataset="d",
            model="m",
            explainer=f"e{i}",
            metric="loc.mass",
            status="ok",
            kind="localisation",
            value=0.1 * i,
            ci_low=0.0,
            ci_high=1.0,
            n=4,
            higher_is_better=True,
        )
        store.write_cell(run, row)
    if failed:
        bad = ResultRow(
            dataset="d",
            model="m",
            explainer="bad",
            metric="loc.mass",
            status="failed",
            kind="localisation",
            higher_is_better=True,
            error="explainer bad: RuntimeError: boom",
            traceback=failed,
        )
        store.write_cell(run, bad)


def _start(store: Store) -> int:
    return store.start_run({"benchmark": "demo", "spec_file": "demo.yaml", "spec_hash": "abc"})


def test_latest_run_finished_skips_an_interrupted_run(tmp_path: Path) -> None:
    store = Store(tmp_path / "results.sqlite")
    first = _start(store)
    store.finish_run(first, "failed")
    second = _start(store)
    assert store.latest_run()["run_id"] == second
    assert store.latest_run(finished=True)["run_id"] == first


def test_reports_keep_the_finished_run_and_name_the_interrupted_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(tmp_path / "results.sqlite")
    complete = _start(store)
    _cells(store, complete, 7)
    store.finish_run(complete, "ok")
    partial = _start(store)  # Ctrl-C: status stays 'running', finished NULL
    _cells(store, partial, 3)
    store.close()
    with caplog.at_level(logging.WARNING):
        assert main(["report", str(tmp_path)]) == 0
    md = (tmp_path / "leaderboard.md").read_text()
    assert "Cells: 7 ok, 0 skipped, 0 failed." in md and INCOMPLETE not in md
    assert len(json.loads((tmp_path / "results.json").read_text())) == 7
    warning = caplog.text
    assert f"run {partial} (started " in warning and "has not finished" in warning
    assert "rerun the same `harness run` command to resume it" in warning


def test_a_store_with_only_an_interrupted_run_is_reported_as_incomplete(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(tmp_path / "results.sqlite")
    run = _start(store)
    _cells(store, run, 3)
    with caplog.at_level(logging.WARNING):
        write_reports(store, tmp_path)
    md = (tmp_path / "leaderboard.md").read_text()
    assert f"status: `{INCOMPLETE}`" in md.splitlines()[3]  # the meta line
    assert "Cells: 3 ok" in md
    assert INCOMPLETE in (tmp_path / "leaderboard.html").read_text()
    assert f"run {run} (started " in caplog.text and "has not finished" in caplog.text


def test_tracebacks_are_stored_but_stay_out_of_the_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store(tmp_path / "results.sqlite")
    run = _start(store)
    trace = 'Traceback (most recent call last):\n  File "x.py", line 1, in explode_here\nRuntimeError: boom\n'
    _cells(store, run, 2, failed=trace)
    store.finish_run(run, "failed")
    assert store.query("SELECT traceback FROM results WHERE explainer = 'bad'") == [
        {"traceback": trace}
    ]
    write_reports(store, tmp_path)
    for name in ("leaderboard.md", "leaderboard.csv", "leaderboard.html", "results.json"):
        assert "explode_here" not in (tmp_path / name).read_text(), name
    store.close()
    assert main(["report", str(tmp_path), "--tracebacks"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("d / m / bad / loc.mass: explainer bad: RuntimeError: boom\n")
    assert "in explode_here" in out


def test_tracebacks_says_when_no_cell_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store(tmp_path / "results.sqlite")
    run = _start(store)
    _cells(store, run, 2)
    store.finish_run(run, "ok")
    store.close()
    assert main(["report", str(tmp_path), "--tracebacks"]) == 0
    assert capsys.readouterr().out == f"no cell of run {run} failed\n"


def test_a_store_with_the_old_schema_gains_the_traceback_column(tmp_path: Path) -> None:
    path = tmp_path / "results.sqlite"
    write_old_store(
        path,
        """
        INSERT INTO runs (benchmark, status) VALUES ('old', 'ok');
        INSERT INTO results (run_id, dataset, model, explainer, metric, status, error)
            VALUES (1, 'd', 'm', 'old', 'loc.mass', 'failed', 'explainer old: KeyError: x');
        """,
    )
    store = Store(path)
    _cells(store, 1, 1, failed="Traceback ...\nValueError: new\n")
    rows = store.query("SELECT explainer, traceback FROM results ORDER BY explainer")
    assert rows == [
        {"explainer": "bad", "traceback": "Traceback ...\nValueError: new\n"},
        {"explainer": "e0", "traceback": ""},
        {"explainer": "old", "traceback": None},
    ]
    store.close()
    store = Store(path)  # opening a migrated store again changes nothing
    assert store.latest_run(finished=True)["benchmark"] == "old"
    assert "(no traceback stored for this cell)" in failure_text(store, 1)
    store.close()
