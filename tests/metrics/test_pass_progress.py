"""Metrics that evaluate in several passes report one count against one total, never restarting.

Model randomisation re-explains once per layer, sensitivity once per group of rows,
monotonicity once per block of steps, random logit a second time for its agreement draw;
the progress line of a long cell showed ``0/32 inputs evaluated`` for minutes when each
pass restarted the count.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from _toys_a import InputXGradient
from torch import nn

import harness
from harness.contracts import Attribution
from harness.substeps import reporting

N = 10
CASES = [
    ("sanity.cascading_randomisation", {}),
    ("sanity.independent_randomisation", {}),
    ("sanity.random_logit", {"similarity": "spearman"}),
    ("robustness.max_sensitivity", {"n_samples": 4, "chunk": 8}),
]


@pytest.mark.parametrize(("name", "params"), CASES, ids=[c[0] for c in CASES])
def test_one_count_against_one_total(toy_factory, name: str, params: dict) -> None:
    toy = toy_factory(n=N, size=16, classes=4, seed=1)
    seen: list[tuple[int, int]] = []
    metric = harness.get_metric(name, **params)
    with reporting(lambda done, total: seen.append((done, total))):
        metric.evaluate(
            toy.model, toy.batch, toy.targets, toy.attribution, explainer=InputXGradient()
        )
    assert len(seen) > 2
    (total,) = {t for _, t in seen}
    done = [d for d, _ in seen]
    assert done == sorted(done) and done[-1] == total
    assert len(set(done)) > 2  # the count moves through the passes, not 0 -> total at once


def test_cascading_counts_every_layer_once(toy_factory) -> None:
    toy = toy_factory(n=N, size=16, classes=4, seed=1)
    seen: list[tuple[int, int]] = []
    metric = harness.get_metric("sanity.cascading_randomisation")
    with reporting(lambda done, total: seen.append((done, total))):
        scores = metric.evaluate(
            toy.model, toy.batch, toy.targets, toy.attribution, explainer=InputXGradient()
        )
    layers = int(scores.notes["layers"])
    assert layers > 1 and seen[-1] == (layers * N, layers * N)
    assert torch.isfinite(scores.values).all()


def test_monotonicity_counts_its_blocks_against_every_row_and_step(toy_factory, wrap) -> None:
    """A linear model with positive weights on positive images never decreases: every block runs."""
    toy = toy_factory(n=N, size=16, classes=2, seed=1)
    net = nn.Sequential(nn.Flatten(), nn.Linear(256, 2))
    with torch.no_grad():
        net[1].weight.copy_(torch.rand(2, 256, generator=torch.Generator().manual_seed(0)) + 0.1)
        net[1].weight[1].zero_()
        net[1].bias.zero_()
    images = toy.batch.images.abs() + 0.1
    attribution = Attribution(pixels=images[:, 0] * net[1].weight[0].view(16, 16))
    targets = torch.zeros(N, dtype=torch.long)
    seen: list[tuple[int, int]] = []
    metric = harness.get_metric("faithfulness.monotonicity", output="logit")
    with reporting(lambda done, total: seen.append((done, total))):
        scores = metric.evaluate(wrap(net), replace(toy.batch, images=images), targets, attribution)
    assert bool((scores.values == 1).all())  # never decided early: every step evaluated
    (total,) = {t for _, t in seen}
    done = [d for d, _ in seen]
    assert done == sorted(done) and done[0] < done[-1] == total  # two blocks or more
