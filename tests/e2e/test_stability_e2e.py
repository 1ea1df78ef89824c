"""``harness stability`` on two real runs of one spec with different seeds, as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from _cli import SMALL_SPEC, run_cli

pytestmark = pytest.mark.e2e


def test_two_seeds_compared_from_the_command_line(tmp_path: Path) -> None:
    spec = tmp_path / "small.yaml"
    spec.write_text(SMALL_SPEC)  # seed: 0
    base = tmp_path / "small"
    proc = run_cli("run", str(spec), "--seeds", "0", "1", "-o", str(base), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    folders = [base, tmp_path / "small_seed1"]  # the spec's own seed writes the output folder
    report = tmp_path / "small_stability"
    assert proc.stdout.count("small: 6 cells: 6 ok") == 2
    assert f"wrote {report / 'stability.md'}" in proc.stdout
    assert "synthetic.lesions / torchvision.resnet18: " in proc.stdout
    assert "same spec" not in proc.stderr  # different seeds: different spec hashes
    again = tmp_path / "again"
    proc = run_cli("stability", *map(str, folders), "-o", str(again))
    assert proc.returncode == 0, proc.stderr
    for name in ("stability.csv", "stability_ranks.csv", "stability_pairs.csv"):
        assert (again / name).read_text() == (report / name).read_text()

    summary = pd.read_csv(report / "stability.csv")
    assert set(summary["metric"]) == {"localisation.pointing_game", "localisation.relevance_mass"}
    pairs = pd.read_csv(report / "stability_pairs.csv", keep_default_na=False)
    for folder in folders:
        rows = json.loads((folder / "results.json").read_text())
        comps = pd.read_csv(folder / "comparisons.csv")
        for metric in summary["metric"]:
            value = {r["explainer"]: r["value"] for r in rows if r["metric"] == metric}
            gc, rnd = value["captum.grad_cam"], value["control.random"]
            expected = "=" if gc == rnd else ("captum.grad_cam" if gc > rnd else "control.random")
            (pair,) = pairs[pairs["metric"] == metric].to_dict(orient="records")
            assert pair[f"better@{folder.name}"] == expected
            (test,) = comps[comps["metric"] == metric].to_dict(orient="records")
            significant = test["better"] if test["p_adjusted"] < 0.05 else ""
            assert pair[f"significant@{folder.name}"] == significant
    md = (report / "stability.md").read_text()
    assert "# Explainer rankings across 2 runs" in md and "| captum.grad_cam |" in md


def test_seeds_need_two_and_no_seed_override(tmp_path: Path) -> None:
    spec = tmp_path / "small.yaml"
    spec.write_text(SMALL_SPEC)
    proc = run_cli("run", str(spec), "--seeds", "3", "3", "-o", str(tmp_path / "out"))
    assert proc.returncode == 2 and "--seeds: expected at least two different seeds" in proc.stderr
    proc = run_cli("run", str(spec), "--seeds", "1", "2", "--set", "seed=4")
    assert proc.returncode == 2 and "not also --set seed=" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_folder_without_results_is_named(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_cli("stability", str(empty), str(tmp_path), "-o", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert f"{empty / 'results.json'}: no results.json here" in proc.stderr
