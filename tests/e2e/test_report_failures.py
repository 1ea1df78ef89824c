"""A failed cell's traceback is kept in the store and shown by `harness report DIR --tracebacks`."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from _cli import install_plugin, run_cli

pytestmark = pytest.mark.e2e

RAISING_PLUGIN = """
from typing import ClassVar

from harness import Explainer, hookimpl


def _explode_in_helper():
    try:
        {}["missing"]
    except KeyError as exc:
        raise RuntimeError("kaboom: the helper gave up") from exc


class Raises(Explainer):
    name: ClassVar[str] = "raising.deep"

    def _explain(self, model, batch, targets):
        _explode_in_helper()


@hookimpl
def harness_explainers():
    return {"raising.deep": "harness_raising.plugin:Raises"}
"""


def test_report_tracebacks_shows_the_raising_function(tmp_path: Path) -> None:
    env = install_plugin(tmp_path / "site", "raising", "0.1", RAISING_PLUGIN)
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        textwrap.dedent("""
        benchmark: raising
        dataset: {name: synthetic.lesions, params: {n: 40, image_size: 32}}
        models: [{name: torchvision.resnet18, params: {epochs: 1}}]
        explainers: [control.random, raising.deep]
        metrics: [localisation.relevance_mass]
        explain: {n: 6}
        bootstrap: {n: 50}
    """)
    )
    out = tmp_path / "out"
    proc = run_cli("run", str(spec), "-o", str(out), "--no-progress", env=env)
    assert proc.returncode == 1, proc.stderr
    assert f"harness report {out} --tracebacks" in proc.stderr
    for name in ("leaderboard.md", "leaderboard.csv", "leaderboard.html", "results.json"):
        assert "_explode_in_helper" not in (out / name).read_text(), name
    rows = {r["explainer"]: r for r in json.loads((out / "results.json").read_text())}
    assert "RuntimeError: kaboom" in rows["raising.deep"]["error"]

    shown = run_cli("report", str(out), "--tracebacks", env=env)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith(
        "synthetic.lesions / torchvision.resnet18 / raising.deep / localisation.relevance_mass: "
    )
    assert "RuntimeError: kaboom: the helper gave up" in lines[0]
    assert "in _explode_in_helper" in shown.stdout
    assert "KeyError: 'missing'" in shown.stdout  # the chained cause
    assert "direct cause of the following exception" in shown.stdout
    assert "control.random" not in shown.stdout  # only failed cells
