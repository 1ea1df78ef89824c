"""Common random numbers for re-explanations: ``harness.draws.explainer_seed``.

The runner seeds an attribution stage with ``seed_everything(seed)`` and a
metric stage with its own seed; a metric that explains again inside
``explainer_seed(seed)`` gives a stochastic explainer the attribution's draws,
however the rows are chunked, and leaves the caller's random state as it was.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from _explainer_toys import make_batch
from harness_builtins.explainers.gradient.smoothgrad import SmoothGrad
from harness_builtins.explainers.perturbation.kernel_shap import KernelShap
from harness_builtins.explainers.perturbation.lime import Lime
from torch import Tensor

from harness.chunking import explain_chunks
from harness.contracts import Batch, Explainer, Model
from harness.draws import explainer_seed, seed_everything
from harness.metrics import _engine

EXPLAINERS = {
    "smoothgrad": lambda: SmoothGrad(nt_samples=4, nt_samples_batch_size=4),
    "lime": lambda: Lime(n_samples=32, perturbations_per_eval=16, segmentation="grid", grid_size=4),
    "kernel_shap": lambda: KernelShap(
        n_samples=32, perturbations_per_eval=16, segmentation="grid", grid_size=4
    ),
}


def _explain(model: Model, explainer: Explainer, batch: Batch, size: int) -> Tensor:
    targets = torch.arange(len(batch)) % 3
    parts, _ = explain_chunks(model, explainer, batch, targets, size)
    return torch.cat([p.pixels for p in parts if p.pixels is not None])


@pytest.mark.parametrize("name", sorted(EXPLAINERS))
def test_reexplaining_inside_explainer_seed_repeats_the_attribution_draws(
    tiny_cnn: Model, batch: Batch, name: str
) -> None:
    model, explainer = tiny_cnn, EXPLAINERS[name]()
    seed_everything(1234)  # what the runner does before an attribution stage
    attribution = _explain(model, explainer, batch, size=4)
    seed_everything(4321)  # the metric stage's own seed, as the runner sets it
    torch.rand(7), np.random.rand(3), random.random()  # and the metric's draws
    _engine.cache_clear()  # no remembered forwards: the draws alone must agree
    with explainer_seed(1234):
        again = _explain(model, explainer, batch, size=1)  # other chunks too
    torch.testing.assert_close(again, attribution, rtol=1e-5, atol=1e-7)
    _engine.cache_clear()
    other = _explain(model, explainer, batch, size=4)  # without it: the metric stage's draws
    assert not torch.allclose(other, attribution, rtol=1e-3, atol=1e-5)


def test_the_block_leaves_every_random_state_as_it_was(tiny_cnn: Model) -> None:
    model, batch = tiny_cnn, make_batch(2, 16)
    seed_everything(7)
    torch.rand(3), np.random.rand(2), random.random()
    before = torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()
    with explainer_seed(3):
        _explain(model, EXPLAINERS["smoothgrad"](), batch, size=1)
    after = torch.get_rng_state(), np.random.get_state()[1], random.getstate()
    assert torch.equal(after[0], before[0])
    assert np.array_equal(after[1], before[1]) and after[2] == before[2]


def test_without_a_seed_explainer_calls_use_the_callers_random_state(tiny_cnn: Model) -> None:
    model, batch = tiny_cnn, make_batch(2, 16)
    seed_everything(5)
    expected = _explain(model, EXPLAINERS["smoothgrad"](), batch, size=2)
    seed_everything(5)
    with explainer_seed(None):
        got = _explain(model, EXPLAINERS["smoothgrad"](), batch, size=2)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    seed_everything(6)
    with explainer_seed(None):
        moved = _explain(model, EXPLAINERS["smoothgrad"](), batch, size=2)
    assert not torch.allclose(moved, expected)
