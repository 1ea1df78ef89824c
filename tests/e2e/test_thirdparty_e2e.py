"""A third-party plugin distribution, installed as a user would, is listed and used in a spec."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _cli import ROOT, run_cli

pytestmark = pytest.mark.e2e


def test_installed_third_party_plugin_runs_in_a_spec(tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(
        ROOT / "tests/plugins/harness-thirdparty",
        source,
        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"),
    )
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(source),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    env = {"PYTHONPATH": str(site)}
    listing = run_cli("ls", env=env).stdout
    for name in ("thirdparty.checkerboard", "thirdparty.gradient_norm", "thirdparty.mass_in_mask"):
        assert any(
            name in line and "harness-thirdparty 0.1.0" in line for line in listing.splitlines()
        )
    spec = tmp_path / "third.yaml"
    spec.write_text(
        textwrap.dedent("""
        benchmark: third
        dataset: {name: thirdparty.checkerboard, params: {n: 48}}
        models: [{name: torchvision.resnet18, params: {epochs: 1}}]
        explainers: [thirdparty.gradient_norm, control.random]
        metrics: [thirdparty.mass_in_mask, localisation.relevance_mass, classification.accuracy]
        explain: {n: 8}
        bootstrap: {n: 50}
    """)
    )
    proc = run_cli("run", str(spec), "-o", str(tmp_path / "out"), "--no-progress", env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = json.loads((tmp_path / "out" / "results.json").read_text())
    cells = {(r["explainer"], r["metric"]): r for r in records}
    assert cells[("thirdparty.gradient_norm", "thirdparty.mass_in_mask")]["status"] == "ok"
    assert (
        "harness-thirdparty 0.1.0"
        in cells[("thirdparty.gradient_norm", "localisation.relevance_mass")]["plugins"][
            "explainer"
        ]
    )
    assert {r["status"] for r in records} == {"ok"}
