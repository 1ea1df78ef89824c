"""Sanity checks: MPRT (cascading, independent) and random logit vs Quantus 0.6; SSIM vs skimage."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import numpy as np
import pytest
import scipy.stats
import torch
from _toys_a import InputXGradient, ModuleModel, blob_batch, single_thread, tiny_model
from conftest import wrap_module
from skimage.metrics import structural_similarity

import harness
from harness.contracts import Attribution
from harness.errors import CapabilityError, PluginError
from harness.metrics._correlation import spearman_rows
from harness.metrics.sanity._common import box_mean, ssim_rows
from harness.metrics.sanity.random_logit import other_classes, score_other_classes

quantus = pytest.importorskip("quantus")


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    yield from single_thread()


EXPLAINER = InputXGradient()


def quantus_explain(
    model: torch.nn.Module, inputs: np.ndarray, targets: np.ndarray, **_: object
) -> np.ndarray:
    """Quantus explain_func: our explainer on the module Quantus hands over."""
    wrapped = ModuleModel(module=model)
    batch, _ = blob_batch(n=len(inputs), size=inputs.shape[-1])
    batch = batch.with_images(torch.as_tensor(inputs))
    out = EXPLAINER.explain(wrapped, batch, torch.as_tensor(np.asarray(targets)).long())
    return out.pixels.unsqueeze(1).numpy()


@pytest.fixture(scope="module")
def case():
    model = tiny_model(classes=3, seed=1)
    batch, _ = blob_batch(n=8, size=16, classes=3, seed=3)
    with torch.no_grad():
        targets = model.module(batch.images).argmax(1)
    attribution = EXPLAINER.explain(model, batch, targets)
    return model, batch, targets, attribution


def _quantus_mprt(model, batch, targets, attribution, order: str) -> np.ndarray:
    metric = quantus.MPRT(
        similarity_func=quantus.similarity_func.correlation_spearman,
        layer_order=order,
        seed=42,
        abs=True,
        normalise=False,
        disable_warnings=True,
    )
    out = metric(
        model=copy.deepcopy(model.module),
        x_batch=batch.images.numpy(),
        y_batch=targets.numpy(),
        a_batch=attribution.pixels.unsqueeze(1).numpy().copy(),
        explain_func=quantus_explain,
        channel_first=True,
    )
    return np.stack([np.asarray(v, dtype=float) for k, v in out.items() if k != "original"], axis=1)


@pytest.mark.parametrize(
    ("name", "order"),
    [
        ("sanity.cascading_randomisation", "top_down"),
        ("sanity.independent_randomisation", "independent"),
    ],
)
def test_model_randomisation_matches_quantus_mprt(case, name: str, order: str) -> None:
    model, batch, targets, attribution = case
    before = {k: v.clone() for k, v in model.module.state_dict().items()}
    rng_before = torch.random.get_rng_state()
    scores = harness.get_metric(name).evaluate(
        model, batch, targets, attribution, explainer=EXPLAINER
    )
    # never mutates the caller's model, nor the global RNG
    assert all(torch.equal(before[k], v) for k, v in model.module.state_dict().items())
    assert torch.equal(rng_before, torch.random.get_rng_state())
    ours = scores.curves["spearman"].numpy()
    theirs = _quantus_mprt(model, batch, targets, attribution, order)
    if order == "independent":  # Quantus lists independent layers input-first; ours output-first
        theirs = theirs[:, ::-1]
    assert ours.shape == theirs.shape == (8, 3)
    np.testing.assert_allclose(ours, theirs, atol=1e-6)  # same weights, same maps: float32 rounding
    np.testing.assert_allclose(scores.values.numpy(), ours.mean(1))
    assert scores.curves["ssim"].shape == (8, 3)
    assert scores.notes["layers"] == 3.0


def test_randomisation_params_and_capability(case) -> None:
    model, batch, targets, attribution = case
    first = harness.get_metric("sanity.cascading_randomisation", max_layers=1, similarity="ssim")
    out = first.evaluate(model, batch, targets, attribution, explainer=EXPLAINER)
    assert out.curves["spearman"].shape == (8, 1)
    np.testing.assert_allclose(out.values.numpy(), out.curves["ssim"][:, 0].numpy())
    bottom = harness.get_metric("sanity.independent_randomisation", order="bottom_up", max_layers=1)
    top = harness.get_metric("sanity.independent_randomisation", max_layers=3)
    last = top.evaluate(model, batch, targets, attribution, explainer=EXPLAINER).curves["spearman"][
        :, -1
    ]
    got = bottom.evaluate(model, batch, targets, attribution, explainer=EXPLAINER).curves[
        "spearman"
    ][:, 0]
    np.testing.assert_allclose(got.numpy(), last.numpy())  # independent: same layer, same score
    with pytest.raises(CapabilityError):
        first.evaluate(model, batch, targets, attribution)


def test_explanation_that_ignores_the_model_fails_the_check(case) -> None:
    """An edge-like map of the input alone stays identical under randomisation: similarity 1."""
    from harness.contracts import Explainer

    class InputOnly(Explainer):
        name = "test.input_only"

        def _explain(self, model, batch, targets):
            return Attribution(pixels=batch.images.sum(1) ** 2)

    model, batch, targets, _ = case
    explainer = InputOnly()
    attribution = explainer.explain(model, batch, targets)
    out = harness.get_metric("sanity.cascading_randomisation").evaluate(
        model, batch, targets, attribution, explainer=explainer
    )
    np.testing.assert_allclose(out.values.numpy(), 1.0)
    np.testing.assert_allclose(out.curves["ssim"].numpy(), 1.0)
    good = harness.get_metric("sanity.cascading_randomisation").evaluate(
        model, batch, targets, EXPLAINER.explain(model, batch, targets), explainer=EXPLAINER
    )
    assert float(good.values.mean()) < 0.9


def quantus_other_classes(targets: torch.Tensor, num_classes: int, seed: int) -> torch.Tensor:
    """Oracle: the classes ``quantus.RandomLogit(seed=seed)`` explains for one batch.

    Quantus draws ``j ~ U{0, ..., K-2}`` by batch position after ``np.random.seed(seed)``
    and takes the j-th class of the ascending list without the target.
    """
    j = torch.as_tensor(np.random.RandomState(seed).randint(0, num_classes - 1, len(targets)))
    return j + (j >= targets).long()


def test_random_logit_matches_quantus(case) -> None:
    model, batch, targets, attribution = case
    # Quantus draws the other classes by batch position; on Quantus's classes the same maps
    # are compared by the same Spearman, exactly.
    q = quantus.RandomLogit(
        similarity_func=quantus.similarity_func.correlation_spearman,
        num_classes=3,
        seed=42,
        abs=False,
        normalise=False,
        disable_warnings=True,
    )
    theirs = np.asarray(
        q(
            model=model.module,
            x_batch=batch.images.numpy(),
            y_batch=targets.numpy(),
            a_batch=attribution.pixels.unsqueeze(1).numpy().copy(),
            explain_func=quantus_explain,
            channel_first=True,
        ),
        dtype=float,
    )
    on_theirs = score_other_classes(
        model,
        batch,
        attribution,
        EXPLAINER,
        quantus_other_classes(targets, 3, 42),
        similarity="spearman",
    )
    np.testing.assert_allclose(on_theirs.values.numpy(), theirs, atol=1e-6)
    # The metric itself scores the same way on its own, id-keyed, classes.
    keyed = other_classes(targets, 3, salt="sanity.random_logit", seed=42, ids=batch.ids)
    ours = (
        harness.get_metric("sanity.random_logit", similarity="spearman")
        .score(model, batch, targets, attribution, explainer=EXPLAINER)
        .numpy()
    )
    expected = score_other_classes(
        model, batch, attribution, EXPLAINER, keyed, similarity="spearman"
    )
    np.testing.assert_array_equal(ours, expected.values.numpy())
    # Default SSIM: Quantus applies skimage SSIM to the flattened (1-D) maps; ours is the 2-D
    # SSIM of the images (the paper's image similarity), checked against skimage in 2-D.
    ssim = harness.get_metric("sanity.random_logit").score(
        model, batch, targets, attribution, explainer=EXPLAINER
    )
    a = attribution.pixels.double().numpy()
    b = EXPLAINER.explain(model, batch, keyed).pixels.double().numpy()
    a, b = a / np.abs(a).max((1, 2), keepdims=True), b / np.abs(b).max((1, 2), keepdims=True)
    ref = [
        structural_similarity(x, y, data_range=max(x.max(), y.max()) - min(x.min(), y.min()))
        for x, y in zip(a, b, strict=True)
    ]
    np.testing.assert_allclose(ssim.numpy(), ref, atol=1e-9)


def test_spearman_and_ssim_helpers_match_scipy_and_skimage() -> None:
    g = np.random.default_rng(0)
    a = g.normal(size=(5, 12, 9)).round(1)  # ties
    b = g.normal(size=(5, 12, 9)).round(0)
    rho, defined = spearman_rows(torch.tensor(a), torch.tensor(b))
    ref = [scipy.stats.spearmanr(x.ravel(), y.ravel())[0] for x, y in zip(a, b, strict=True)]
    np.testing.assert_allclose(rho.numpy(), ref, atol=1e-12)
    assert bool(defined.all())
    s = ssim_rows(torch.tensor(a), torch.tensor(b))
    ref = [
        structural_similarity(x, y, data_range=max(x.max(), y.max()) - min(x.min(), y.min()))
        for x, y in zip(a, b, strict=True)
    ]
    np.testing.assert_allclose(s.numpy(), ref, atol=1e-12)
    const = torch.ones(1, 12, 9)
    rho, defined = spearman_rows(const, torch.tensor(a[:1]))
    assert float(rho[0]) == 0.0 and not bool(defined[0])
    assert float(ssim_rows(const, const)[0]) == 1.0


@pytest.mark.parametrize(
    ("shape", "win"), [((2, 3, 28, 31), 7), ((1, 224, 224), 7), ((4, 9, 5), 5)]
)
def test_box_mean_equals_average_pooling(shape: tuple[int, ...], win: int) -> None:
    """Running-sum window means equal avg_pool2d's (stride 1), also on 224 x 224 maps."""
    x = torch.rand(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    flat = x.reshape(-1, 1, *shape[-2:])
    expected = torch.nn.functional.avg_pool2d(flat, win, stride=1)
    got = box_mean(x, win)
    assert got.shape == (*shape[:-2], shape[-2] - win + 1, shape[-1] - win + 1)
    np.testing.assert_allclose(got.reshape(expected.shape).numpy(), expected.numpy(), atol=1e-13)


def test_batched_similarity_equals_one_stack_at_a_time() -> None:
    """(L, N, H, W) maps against an (N, H, W) reference: the same numbers as L separate calls."""
    g = np.random.default_rng(1)
    a = torch.tensor(g.normal(size=(4, 10, 9)).round(1))  # ties
    b = torch.tensor(g.normal(size=(3, 4, 10, 9)).round(1))
    b[1, 2] = 1.5  # one constant map: Spearman undefined
    rho, defined = spearman_rows(a, b)
    ssim = ssim_rows(a, b)
    assert rho.shape == defined.shape == ssim.shape == (3, 4)
    for layer in range(3):
        r, d = spearman_rows(a, b[layer])
        np.testing.assert_allclose(rho[layer].numpy(), r.numpy(), atol=1e-15)
        assert torch.equal(defined[layer], d)
        np.testing.assert_allclose(ssim[layer].numpy(), ssim_rows(a, b[layer]).numpy(), atol=1e-15)
    assert not bool(defined[1, 2]) and float(rho[1, 2]) == 0.0
    ref = [scipy.stats.spearmanr(a[i].ravel(), b[2, i].ravel())[0] for i in range(4)]
    np.testing.assert_allclose(rho[2].numpy(), ref, atol=1e-12)


def test_randomisation_shares_the_twin_and_needs_layers(case) -> None:
    """A label-randomised twin rides along uncopied and untouched; no layers is a capability error."""
    model, batch, targets, attribution = case
    metric = harness.get_metric("sanity.independent_randomisation")
    alone = metric.evaluate(model, batch, targets, attribution, explainer=EXPLAINER)
    twin = tiny_model(classes=3, seed=9)
    twin_before = {k: v.clone() for k, v in twin.module.state_dict().items()}
    before = {k: v.clone() for k, v in model.module.state_dict().items()}
    for partner in (twin, model):  # a twin, and the model as its own "twin"
        model.label_randomised = partner
        try:
            out = metric.evaluate(model, batch, targets, attribution, explainer=EXPLAINER)
        finally:
            model.label_randomised = None
        assert torch.equal(out.values, alone.values)
        assert all(torch.equal(before[k], v) for k, v in model.module.state_dict().items())
    assert all(torch.equal(twin_before[k], v) for k, v in twin.module.state_dict().items())
    with pytest.raises(PluginError, match="max_layers=0 - expected None or a positive integer"):
        harness.get_metric("sanity.cascading_randomisation", max_layers=0).evaluate(
            model, batch, targets, attribution, explainer=EXPLAINER
        )
    weightless = wrap_module(_Weightless(), classes=3)  # no layer to randomise
    with pytest.raises(CapabilityError, match="at least one"):
        harness.get_metric("sanity.cascading_randomisation").evaluate(
            weightless, batch, targets, attribution, explainer=EXPLAINER
        )


class _Weightless(torch.nn.Module):
    """Three logits of an image without parameters: nothing to randomise."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([x.mean((1, 2, 3)), -x.mean((1, 2, 3)), x.amax((1, 2, 3))], dim=1)


@pytest.mark.parametrize("absolute", [True, False])
def test_spearman_of_raw_maps_equals_scipy_on_prepared_maps(absolute: bool) -> None:
    from harness.metrics.sanity._common import prepare, rank_maps

    g = torch.Generator().manual_seed(3)
    a = torch.randn(6, 9, 9, generator=g) * torch.rand(6, 1, 1, generator=g) * 1e3
    b = torch.randn(2, 6, 9, 9, generator=g) * 1e-3
    a[:, ::2, ::3], b[..., 1::3, ::2] = 0.5, -0.25  # ties
    rho, _ = spearman_rows(rank_maps(a, absolute), rank_maps(b, absolute))
    pa, pb = prepare(a, absolute), prepare(b, absolute)
    for layer in range(2):
        for row in range(6):
            expected = scipy.stats.spearmanr(pa[row].flatten(), pb[layer, row].flatten())[0]
            assert float(rho[layer, row]) == pytest.approx(expected, abs=1e-12)


def test_reset_layer_is_reset_parameters_under_the_seed_and_keeps_the_global_stream() -> None:
    from harness.metrics.sanity.model_randomisation import reset_layer

    layer, expected = torch.nn.Conv2d(3, 4, 3), torch.nn.Conv2d(3, 4, 3)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        expected.reset_parameters()
    torch.manual_seed(123)
    reference_draw = torch.rand(3)
    torch.manual_seed(123)
    reset_layer(layer, 7)
    assert torch.equal(torch.rand(3), reference_draw)  # the global generator did not move
    for name, value in expected.state_dict().items():
        assert torch.equal(layer.state_dict()[name], value), name


def test_constant_maps_agree_fully_and_tiny_maps_are_refused() -> None:
    from harness.errors import CapabilityError

    flat = torch.zeros(2, 5, 5)
    varied = torch.rand(2, 5, 5, generator=torch.Generator().manual_seed(0))
    rho, defined = spearman_rows(flat, torch.stack([flat + 3.0, varied]))
    assert rho.tolist() == [[1.0, 1.0], [0.0, 0.0]]  # unchanged constant map / no association
    assert not bool(defined.any())
    with pytest.raises(CapabilityError, match="SSIM: maps of 2 x 2 px - expected at least 3 x 3"):
        ssim_rows(torch.rand(1, 2, 2), torch.rand(1, 2, 2))
