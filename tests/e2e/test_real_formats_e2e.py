"""The real-data specs run on data in the real layouts by setting a path (trees made here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _cli import run_cli
from harness_builtins.datasets._fixtures import write_chexpert, write_kermany

pytestmark = pytest.mark.e2e

SMALL = [
    "--set", "models=[{name: torchvision.resnet18, params: {epochs: 1, batch_size: 8}}]",
    "--set", "explain={n: 4}",
    "--set", "bootstrap={n: 50}",
]  # fmt: skip


def test_pneumonia_spec_on_a_kermany_tree(tmp_path: Path) -> None:
    root = write_kermany(tmp_path / "chest_xray")
    out = tmp_path / "out"
    proc = run_cli("run", "specs/pneumonia_kermany.yaml", "-o", str(out), "--no-progress",
                   "--set", f"dataset.params.root={root}", "--set", "dataset.params.image_size=32", *SMALL)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = json.loads((out / "results.json").read_text())
    assert {r["dataset"] for r in records} == {"xray.kermany_pneumonia"}
    skipped = [r for r in records if r["status"] == "skipped"]
    assert skipped and all("masks" in r["reason"] for r in skipped)
    assert any(r["metric"] == "faithfulness.deletion_auc" and r["status"] == "ok" for r in records)


def test_chexpert_spec_on_a_chexpert_tree(tmp_path: Path) -> None:
    root = write_chexpert(tmp_path / "CheXpert-v1.0-small", n_train=12, n_valid=6)
    out = tmp_path / "out"
    proc = run_cli("run", "specs/chexpert_multilabel_real.yaml", "-o", str(out), "--no-progress",
                   "--set", f"dataset.params.root={root}", "--set", "dataset.params.image_size=32", *SMALL)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = {
        r["metric"]: r
        for r in json.loads((out / "results.json").read_text())
        if r["explainer"] == "-"
    }
    assert records["classification.masked_bce"]["status"] == "ok"
    assert records["classification.masked_accuracy"]["status"] == "ok"
