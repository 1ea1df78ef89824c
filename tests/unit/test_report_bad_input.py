"""Reports of rows without intervals, and the runner's warning for a too-large ``explain.n``."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from _core_plugins import toy_registries, write_toy_spec

from harness.cli import main
from harness.reports import write_reports
from harness.runner import RunOptions, run_benchmark
from harness.store import ResultRow, Store


def store_without_intervals(path: Path) -> Store:
    """A store whose ok rows hold a value but no bootstrap interval (None)."""
    store = Store(path / "results.sqlite")
    run = store.start_run({"benchmark": "noci", "spec_file": "noci.yaml", "spec_hash": "abc"})
    common = dict(dataset="d", model="m", kind="localisation", higher_is_better=True, n=3)
    for explainer, value in (("control.mask", 0.9), ("control.random", 0.2), ("cam", 0.7)):
        row = ResultRow(explainer=explainer, metric="loc.mass", status="ok", value=value, **common)  # type: ignore[arg-type]
        store.write_cell(run, row, [("s0", 1, value)])
    cls = ResultRow(
        dataset="d", model="m", explainer="-", metric="cls.acc", status="ok", value=0.5, n=3
    )
    cls.kind, cls.higher_is_better = "classification", True
    store.write_cell(run, cls)
    return store


def test_rows_without_intervals_render_a_dash(tmp_path: Path) -> None:
    store = store_without_intervals(tmp_path)
    files = write_reports(store, tmp_path)
    store.close()
    assert {f.name for f in files} >= {"leaderboard.html", "leaderboard.md"}
    page = (tmp_path / "leaderboard.html").read_text()
    assert page.count("<small>—</small>") == 4 and "0.900" in page
    markdown = (tmp_path / "leaderboard.md").read_text()
    assert "0.900 [n/a, n/a]" in markdown and "an interval is missing" in markdown


def test_harness_report_rebuilds_a_store_without_intervals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store_without_intervals(tmp_path).close()
    assert main(["report", str(tmp_path)]) == 0
    assert "leaderboard.html" in capsys.readouterr().out


def test_explain_n_beyond_the_split_is_warned(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec = write_toy_spec(tmp_path, explain="{n: 50}")
    regs = toy_registries()
    options = RunOptions(spec_path=spec, output=tmp_path / "out", progress=False)
    with caplog.at_level(logging.WARNING, logger="harness.pipeline.explaining"):
        summary = run_benchmark(options, regs)
    assert summary.ok == 1
    (message,) = [r.getMessage() for r in caplog.records if r.name == "harness.pipeline.explaining"]
    assert "explain.n=50" in message and "has 4 rows" in message
    caplog.clear()
    small = RunOptions(
        spec_path=spec, output=tmp_path / "out", progress=False, overrides=("explain.n=4",)
    )
    with caplog.at_level(logging.WARNING, logger="harness.pipeline.explaining"):
        run_benchmark(small, regs)
    assert not [r for r in caplog.records if r.name == "harness.pipeline.explaining"]
