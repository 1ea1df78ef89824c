"""A run killed with SIGKILL at any moment and started again ends with the same leaderboard."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from _cli import ROOT, SMALL_SPEC, harness_cmd, run_cli

pytestmark = pytest.mark.e2e


def test_sigkilled_runs_resume_to_the_uninterrupted_leaderboard(tmp_path: Path) -> None:
    spec = tmp_path / "small.yaml"
    spec.write_text(SMALL_SPEC)
    reference = tmp_path / "reference"
    start = time.monotonic()
    assert run_cli("run", str(spec), "-o", str(reference), "--no-progress").returncode == 0
    duration = time.monotonic() - start

    out = tmp_path / "killed"
    kills = 0
    # kill at moments spread over a run's length: imports, training, explaining, scoring
    for fraction in (0.2, 0.4, 0.55, 0.7, 0.85):
        delay = fraction * duration
        proc = subprocess.Popen(
            [*harness_cmd(), "run", str(spec), "-o", str(out), "--no-progress"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ},
        )
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    assert kills >= 2, "the run finished before it could be killed; lengthen the spec"
    final = run_cli("run", str(spec), "-o", str(out), "--no-progress")
    assert final.returncode == 0, final.stderr[-2000:]
    assert (out / "results.json").read_text() == (reference / "results.json").read_text()
    assert (out / "leaderboard.md").read_text() == (reference / "leaderboard.md").read_text()


def test_new_bootstrap_settings_recompute_every_interval(tmp_path: Path) -> None:
    """Cached classification summaries hold their interval: changed settings must not reuse them."""
    import json

    spec = tmp_path / "small.yaml"
    spec.write_text(SMALL_SPEC)
    out = tmp_path / "out"
    args = ("run", str(spec), "-o", str(out), "--no-progress")
    assert run_cli(*args).returncode == 0

    def widths() -> dict[tuple[str, str], float]:
        rows = json.loads((out / "results.json").read_text())
        return {(r["explainer"], r["metric"]): r["ci_high"] - r["ci_low"] for r in rows}

    before = widths()
    assert "| 95% CI |" in (out / "leaderboard.md").read_text()
    assert run_cli(*args, "--set", "bootstrap.confidence=0.5").returncode == 0
    after = widths()
    assert "| 50% CI |" in (out / "leaderboard.md").read_text()
    assert "[50% bootstrap CI, resampling samples" in (out / "leaderboard.md").read_text()
    for cell, width in before.items():
        if width > 0:
            assert after[cell] < width, cell
