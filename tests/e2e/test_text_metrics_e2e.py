"""Token metrics through the CLI: a text benchmark (text-as-image model, token rationales)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _cli import run_cli

pytestmark = pytest.mark.e2e

PLUGIN = """
import harness

@harness.hookimpl
def harness_datasets():
    return {"toy.abstracts": "harness.testing._toy_abstracts:ToyAbstracts"}

@harness.hookimpl
def harness_models():
    return {"toy.text_grid_cnn": "harness.testing._toy_models:ToyTextGridCNN"}

@harness.hookimpl
def harness_explainers():
    return {"toy.token_occlusion": "harness.testing._toy_attribution:ToyTokenOcclusion"}
"""

PYPROJECT = """
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "harness-toytext"
version = "0.1.0"

[project.entry-points.harness]
toytext = "harness_toytext"
"""


def test_a_text_benchmark_scores_token_explanations(tmp_path: Path) -> None:
    """The harness's own toy text plugins, installed as a user's distribution would be."""
    source = tmp_path / "src"
    (source / "harness_toytext").mkdir(parents=True)
    (source / "harness_toytext" / "__init__.py").write_text(PLUGIN)
    (source / "pyproject.toml").write_text(PYPROJECT)
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(site), str(source)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    spec = tmp_path / "text.yaml"
    spec.write_text(
        textwrap.dedent("""
        benchmark: text
        dataset: {name: toy.abstracts, params: {n: 96, seq_len: 100}}
        models: [{name: toy.text_grid_cnn, params: {epochs: 15}}]
        explainers: [toy.token_occlusion, control.random, {name: control.mask, params: {over: tokens}}]
        metrics:
          - classification.accuracy
          - faithfulness.comprehensiveness
          - faithfulness.sufficiency
          - {name: faithfulness.comprehensiveness, params: {removal: replace}, label: comp_replace}
          - localisation.rationale_auprc
          - {name: complexity.sparseness, params: {over: tokens}}
          - localisation.pointing_game
          - {name: sanity.random_logit, params: {over: tokens, similarity: spearman}}
          - {name: sanity.cascading_randomisation, params: {over: tokens, max_layers: 2}}
        explain: {n: 16}
        bootstrap: {n: 200}
    """)
    )
    out = tmp_path / "out"
    env = {"PYTHONPATH": str(site)}
    run_cli("run", str(spec), "-o", str(out), "--no-progress", env=env)
    rows = json.loads((out / "results.json").read_text())
    value = {(r["explainer"], r["metric"]): r for r in rows}
    assert value["-", "classification.accuracy"]["value"] > 0.8  # the model learned the keywords
    for metric in (
        "faithfulness.comprehensiveness", "comp_replace", "faithfulness.sufficiency",
        "localisation.rationale_auprc", "complexity.sparseness", "sanity.random_logit",
        "sanity.cascading_randomisation",
    ):  # fmt: skip
        for explainer in ("toy.token_occlusion", "control.random"):
            assert value[explainer, metric]["status"] == "ok", (explainer, metric)
    occlusion = {m: r["value"] for (e, m), r in value.items() if e == "toy.token_occlusion"}
    random = {m: r["value"] for (e, m), r in value.items() if e == "control.random"}
    mask = {m: r["value"] for (e, m), r in value.items() if e == "control.mask"}
    # the rationale itself is the ceiling of the token localisation metric
    assert mask["localisation.rationale_auprc"] == 1.0
    # occlusion finds the class keywords (the rationale): removing them costs more, keeping
    # them alone costs less, and they rank above the rest; random tokens do none of this
    assert occlusion["faithfulness.comprehensiveness"] > random["faithfulness.comprehensiveness"]
    assert occlusion["comp_replace"] > random["comp_replace"]
    assert occlusion["faithfulness.sufficiency"] < random["faithfulness.sufficiency"]
    assert occlusion["localisation.rationale_auprc"] > random["localisation.rationale_auprc"]
    # occlusion follows the model: randomising its top layers changes the token scores
    assert occlusion["sanity.cascading_randomisation"] < 0.9
    # a pixel metric has nothing to score on a text model: skipped with its reason, not failed
    skipped = value["toy.token_occlusion", "localisation.pointing_game"]
    assert skipped["status"] == "skipped" and skipped["reason"]
    page = (out / "leaderboard.html").read_text()  # token heat maps of the words explained
    assert '<p class="tokens">' in page and any(
        f">{word}</span>" in page for word in ("tumour", "colon", "neuron", "brain")
    )
    board = (out / "leaderboard.md").read_text()
    assert "faithfulness.comprehensiveness ↑" in board and "faithfulness.sufficiency ↓" in board
