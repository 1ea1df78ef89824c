"""Failing plugins fail their own cells; every command has help; validate reports problems."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from _cli import COMMANDS, install_plugin, run_cli

pytestmark = pytest.mark.e2e

BROKEN_PLUGIN = """
from typing import ClassVar

import torch

from harness import Attribution, CapabilityError, Explainer, hookimpl


class Refuses(Explainer):
    name: ClassVar[str] = "broken.refuses"

    def _explain(self, model, batch, targets):
        raise CapabilityError("this explainer cannot handle ResNets", plugin=self.name)


class Raises(Explainer):
    name: ClassVar[str] = "broken.raises"

    def _explain(self, model, batch, targets):
        raise RuntimeError("boom: this explainer always fails")


class ReturnsNaN(Explainer):
    name: ClassVar[str] = "broken.nan"

    def _explain(self, model, batch, targets):
        return Attribution(pixels=torch.full(batch.images.shape, float("nan"), device=model.device))


class WrongShape(Explainer):
    name: ClassVar[str] = "broken.shape"

    def _explain(self, model, batch, targets):
        return Attribution(pixels=torch.zeros(len(batch), 3, 5, 5, device=model.device))


@hookimpl
def harness_explainers():
    return {"broken.raises": "harness_broken.plugin:Raises", "broken.nan": "harness_broken.plugin:ReturnsNaN",
            "broken.shape": "harness_broken.plugin:WrongShape",
            "broken.refuses": "harness_broken.plugin:Refuses"}
"""


def test_failing_plugins_fail_only_their_cells(tmp_path: Path) -> None:
    env = install_plugin(tmp_path / "site", "broken", "0.3", BROKEN_PLUGIN)
    listing = run_cli("ls", "explainers", env=env)
    assert "broken.nan" in listing.stdout and "harness-broken 0.3" in listing.stdout
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        textwrap.dedent("""
        benchmark: broken
        dataset: {name: synthetic.lesions, params: {n: 40, image_size: 32}}
        models: [{name: torchvision.resnet18, params: {epochs: 1}}]
        explainers: [control.random, broken.raises, broken.nan, broken.shape, broken.refuses]
        metrics: [classification.accuracy, localisation.relevance_mass]
        explain: {n: 6}
        bootstrap: {n: 50}
    """)
    )
    out = tmp_path / "out"
    proc = run_cli("run", str(spec), "-o", str(out), "--no-progress", env=env)
    assert proc.returncode == 1
    assert "6 cells: 2 ok, 1 skipped, 3 failed" in proc.stdout
    rows = {r["explainer"]: r for r in json.loads((out / "results.json").read_text())}
    assert rows["control.random"]["status"] == "ok" and rows["-"]["status"] == "ok"
    assert "boom: this explainer always fails" in rows["broken.raises"]["error"]
    assert (
        "non-finite" in rows["broken.nan"]["error"] and "broken.nan" in rows["broken.nan"]["error"]
    )
    assert (
        "shape (6, 3, 5, 5)" in rows["broken.shape"]["error"]
        and "harness-broken 0.3" in rows["broken.shape"]["error"]
    )
    assert rows["broken.refuses"]["status"] == "skipped"
    assert rows["broken.refuses"]["reason"] == "this explainer cannot handle ResNets"
    md = (out / "leaderboard.md").read_text()
    assert "failed" in md and "boom: this explainer always fails" in md


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command: str) -> None:
    proc = run_cli(command, "--help")
    assert proc.returncode == 0 and "example: harness" in proc.stdout


def test_validate_reports_every_problem_with_suggestions(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(
        "dataset: synthetic.lesion\nmodels: [{name: torchvision.resnet18, params: {epoch: 1}}]\n"
        "explainers: [captum.grad_cam]\nmetrics: [localisation.pointing_gam]\n"
    )
    proc = run_cli("validate", str(spec))
    assert proc.returncode == 2
    err = proc.stderr
    assert "3 problem(s)" in err
    assert "Did you mean: synthetic.lesions" in err
    assert "Did you mean: epochs" in err
    assert "Did you mean: localisation.pointing_game" in err


@pytest.mark.parametrize(
    "spec", ["quickstart", "pneumonia", "chexpert_multilabel", "metric_suite"]
)  # the specs on embedded data (the real-data specs run in test_real_formats_e2e.py)
def test_the_committed_specs_validate_with_every_cell_planned(spec: str) -> None:
    ok = run_cli("validate", f"specs/{spec}.yaml")
    assert ok.returncode == 0, ok.stderr
    assert "cell(s) to run, 0 skipped" in ok.stdout


def test_ls_shows_distribution_and_version() -> None:
    proc = run_cli("ls")
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert any("captum.grad_cam" in line and "harness-builtins 0.1.0" in line for line in lines)
    assert any("localisation.pointing_game" in line and "harness 0.1.0" in line for line in lines)


def test_ls_tags_show_token_variants() -> None:
    proc = run_cli("ls", "metrics", "--tags")
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line for line in proc.stdout.splitlines()[1:]}
    pixels, tokens = lines["sanity.random_logit"].split(" | over=tokens: ")
    assert "needs=explainer,pixel_attributions" in pixels and "modalities=image," in pixels
    assert "needs=explainer,token_attributions" in tokens and "modalities=image+text,text" in tokens
    assert "over=tokens" not in lines["faithfulness.road"]
