"""Data randomisation end to end: the runner trains the label-permuted twin, the metric scores it."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import torch

import harness
from harness.errors import CapabilityError
from harness.runner import RunOptions, run_benchmark


def test_metric_needs_the_twin_and_scores_an_identical_twin_as_one() -> None:
    from harness.testing._setups import metric_setup

    metric = harness.get_metric("sanity.data_randomisation")
    setup = metric_setup(metric)
    model, batch, targets = setup.model, setup.batch, setup.targets
    scores = metric.score(model, batch, targets, setup.attribution, explainer=setup.explainer)
    assert scores.shape == (len(batch),) and bool((scores < 1).all())
    model.label_randomised = model  # a "twin" that learned the same thing: maps identical
    same = metric.score(model, batch, targets, setup.attribution, explainer=setup.explainer)
    assert torch.allclose(same, torch.ones_like(same))
    model.label_randomised = None
    try:
        metric.score(model, batch, targets, setup.attribution, explainer=setup.explainer)
    except CapabilityError as exc:
        assert "permuted labels" in str(exc)
    else:
        raise AssertionError("a missing twin must raise CapabilityError")


def test_twin_explanations_differ_and_runner_trains_the_twin_once(tmp_path: Path) -> None:
    spec = tmp_path / "dr.yaml"
    spec.write_text(
        textwrap.dedent("""
        benchmark: dr
        dataset: {name: synthetic.lesions, params: {n: 64, image_size: 32}}
        models: [{name: torchvision.resnet18, params: {epochs: 2}}]
        explainers: [captum.input_x_gradient]
        metrics: [sanity.data_randomisation]
        explain: {n: 8}
        bootstrap: {n: 50}
    """)
    )
    summary = run_benchmark(RunOptions(spec_path=spec, output=tmp_path / "out", progress=False))
    assert (summary.ok, summary.failed) == (1, 0)
    (record,) = json.loads((tmp_path / "out" / "results.json").read_text())
    # permuted labels teach the network something else: the maps are far from identical
    assert record["value"] < 0.9
    sidecars = [
        p
        for p in (tmp_path / "out" / ".cache").rglob("*.json")
        if not p.name.endswith(".data.json")
    ]
    twins = [
        p for p in sidecars if json.loads(p.read_text())["stage"].endswith("on permuted labels")
    ]
    assert len(twins) == 1
