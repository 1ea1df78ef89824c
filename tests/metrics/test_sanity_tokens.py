"""Sanity checks over token scores (text models): Spearman over each document's tokens, vs SciPy."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import scipy.stats
import torch

import harness
from harness.contracts import Modality, Need, Task
from harness.errors import PluginError
from harness.metrics._correlation import spearman_rows
from harness.metrics.sanity.model_randomisation import reset_layer
from harness.metrics.sanity.random_logit import other_classes
from harness.testing._select import fixture_batch, fixture_dataset, fixture_model, fixture_targets
from harness.testing._toy_attribution import ToyTokenOcclusion

EXPLAINER = ToyTokenOcclusion()


@pytest.fixture(scope="module")
def text():
    model = fixture_model(Modality.TEXT, Task.MULTICLASS)
    batch = fixture_batch(fixture_dataset(Modality.TEXT, Task.MULTICLASS), rows=6)
    targets = fixture_targets(batch, Task.MULTICLASS)
    assert bool((batch.tokens == 0).any())  # the documents are padded
    return model, batch, targets, EXPLAINER.explain(model, batch, targets)


def _scipy_rows(a: torch.Tensor, b: torch.Tensor, valid: torch.Tensor) -> np.ndarray:
    return np.array(
        [scipy.stats.spearmanr(a[i][valid[i]], b[i][valid[i]]).statistic for i in range(len(a))]
    )


def test_spearman_over_valid_positions_equals_scipy_on_the_cut_rows() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.round(torch.randn(5, 12, generator=g) * 2) / 2  # ties
    b = torch.round(torch.randn(3, 5, 12, generator=g) * 2) / 2
    valid = torch.ones(5, 12, dtype=torch.bool)
    for i, n in enumerate([12, 8, 5, 4, 3]):
        valid[i, n:] = False
    rho, defined = spearman_rows(a, b, valid=valid)
    assert bool(defined.all())
    for layer in range(3):
        np.testing.assert_allclose(rho[layer].numpy(), _scipy_rows(a, b[layer], valid), atol=1e-12)
    # a row whose valid part is constant in both maps: nothing changed, as without padding
    a[4, :3], b[0, 4, :3] = 1.0, 2.0
    assert float(spearman_rows(a, b, valid=valid)[0][0, 4]) == 1.0


def test_random_logit_over_tokens_equals_scipy(text) -> None:
    model, batch, targets, attribution = text
    metric = harness.get_metric("sanity.random_logit", over="tokens", similarity="spearman")
    assert Need.TOKEN_ATTRIBUTIONS in metric.get_tags().needs
    scores = metric.score(model, batch, targets, attribution, explainer=EXPLAINER)
    others = other_classes(targets, 3, salt=metric.name, seed=42, ids=batch.ids)
    maps = EXPLAINER.explain(model, batch, others).tokens
    valid = batch.tokens != 0
    expected = _scipy_rows(attribution.tokens, maps, valid)
    np.testing.assert_allclose(scores.numpy(), expected, atol=1e-9)


def test_cascading_randomisation_over_tokens_equals_scipy(text) -> None:
    model, batch, targets, attribution = text
    metric = harness.get_metric("sanity.cascading_randomisation", over="tokens", max_layers=2)
    scores = metric.evaluate(model, batch, targets, attribution, explainer=EXPLAINER)
    assert set(scores.curves) == {"spearman"}  # SSIM compares images: no token curve
    randomised = copy.deepcopy(model)
    valid = batch.tokens != 0
    for layer, (_, module) in enumerate(randomised.randomisable_layers()[:2]):
        reset_layer(module, 43)
        maps = EXPLAINER.explain(randomised, batch, targets).tokens.abs()
        expected = _scipy_rows(attribution.tokens.abs(), maps, valid)
        np.testing.assert_allclose(scores.curves["spearman"][:, layer].numpy(), expected, atol=1e-9)


def test_data_randomisation_over_tokens_uses_the_twin(text) -> None:
    model, batch, targets, attribution = text
    twin = fixture_model(Modality.TEXT, Task.MULTICLASS, permuted=True)
    model = copy.copy(model)
    model.label_randomised = twin
    metric = harness.get_metric("sanity.data_randomisation", over="tokens")
    scores = metric.score(model, batch, targets, attribution, explainer=EXPLAINER)
    maps = EXPLAINER.explain(twin, batch, targets).tokens.abs()
    expected = _scipy_rows(attribution.tokens.abs(), maps, batch.tokens != 0)
    np.testing.assert_allclose(scores.numpy(), expected, atol=1e-9)


@pytest.mark.parametrize(
    "name", ["sanity.random_logit", "sanity.cascading_randomisation", "sanity.data_randomisation"]
)
def test_ssim_over_tokens_is_refused_when_planned(name: str) -> None:
    metric = harness.get_metric(name, over="tokens", similarity="ssim")
    with pytest.raises(PluginError, match="over='tokens' - expected 'spearman'"):
        metric.get_tags()
    with pytest.raises(PluginError, match="over='words'"):
        harness.get_metric(name, over="words").get_tags()
