"""Hand-computed faithfulness cases on a linear model, and ROAD's imputation.

The model is ``logit_0 = sum(w * x)``, ``logit_1 = 0``; input x gradient gives
``a = w * x``, so deleting the pixels with the largest ``a`` first lowers
``logit_0`` by the running sum of the sorted attributions: the curves are
known in closed form.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import harness
from harness.contracts import Attribution, Batch
from harness.errors import PluginError
from harness.metrics import _engine
from harness.metrics.faithfulness._imputation import hashed_normal, linear_imputation

SIZE = 8
HW = SIZE * SIZE


@pytest.fixture()
def linear(wrap):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(HW, 2, bias=False))
    with torch.no_grad():
        net[1].weight[0] = torch.rand(HW) + 0.1  # positive weights
        net[1].weight[1] = 0.0
    model = wrap(net)
    images = torch.rand(4, 1, SIZE, SIZE) + 0.05
    batch = Batch(
        ids=tuple(f"l{i}" for i in range(4)), labels=torch.zeros(4, dtype=torch.long), images=images
    )
    w = net[1].weight[0].detach().view(SIZE, SIZE)
    attribution = Attribution(pixels=(images[:, 0] * w))
    _engine.cache_clear()
    return model, batch, torch.zeros(4, dtype=torch.long), attribution, w


def _deleted_logits(
    images: torch.Tensor,
    w: torch.Tensor,
    a: torch.Tensor,
    k: int,
    base: torch.Tensor,
    descending: bool = True,
) -> torch.Tensor:
    """logit_0 after deleting the top (or bottom) j*k pixels, j = 1..HW/k (closed form)."""
    order = torch.argsort(a.reshape(len(a), -1), dim=1, descending=descending)
    x = images.reshape(len(a), -1).gather(1, order)
    wf = w.reshape(-1)[order]
    gain = (wf * (x - base.view(-1, 1))).cumsum(dim=1)  # logit lost after deleting the first m
    total = (wf * x).sum(dim=1, keepdim=True)
    return (total - gain)[:, k - 1 :: k]


def test_deletion_curve_and_auc_are_analytic(linear) -> None:
    model, batch, targets, attribution, w = linear
    metric = harness.get_metric("faithfulness.deletion_auc", pixels_per_step=4, output="logit")
    scores = metric.evaluate(model, batch, targets, attribution)
    z = _deleted_logits(batch.images, w, attribution.pixels, 4, torch.zeros(4))
    start = (batch.images[:, 0] * w).sum(dim=(1, 2)).view(-1, 1)
    curve = torch.cat([start, z], dim=1).double()
    torch.testing.assert_close(scores.curves["logit"].double(), curve, atol=1e-5, rtol=0)
    auc = (curve.sum(1) - curve[:, 0] / 2 - curve[:, -1] / 2) / (curve.shape[1] - 1)
    torch.testing.assert_close(scores.values, auc, atol=1e-5, rtol=0)
    assert torch.allclose(curve[:, -1], torch.zeros(4, dtype=torch.float64), atol=1e-5)


def test_insertion_with_zero_baseline_is_the_mirror_curve(linear) -> None:
    model, batch, targets, attribution, w = linear
    metric = harness.get_metric(
        "faithfulness.insertion_auc", pixels_per_step=4, output="logit", baseline="zero"
    )
    scores = metric.evaluate(model, batch, targets, attribution)
    total = (batch.images[:, 0] * w).sum(dim=(1, 2)).view(-1, 1)
    deleted = _deleted_logits(batch.images, w, attribution.pixels, 4, torch.zeros(4))
    inserted = torch.cat([torch.zeros(4, 1), total - deleted], dim=1).double()
    torch.testing.assert_close(scores.curves["logit"].double(), inserted, atol=1e-5, rtol=0)
    assert (
        metric.higher_is_better
        and not harness.get_metric("faithfulness.deletion_auc").higher_is_better
    )


def test_pixel_flipping_aopc_with_black_baseline(linear) -> None:
    model, batch, targets, attribution, w = linear
    metric = harness.get_metric("faithfulness.pixel_flipping", pixels_per_step=8, output="logit")
    scores = metric.evaluate(model, batch, targets, attribution)
    base = batch.images.reshape(4, -1).amin(dim=1)
    z = _deleted_logits(batch.images, w, attribution.pixels, 8, base)
    start = (batch.images[:, 0] * w).sum(dim=(1, 2)).view(-1, 1)
    expected = (start - z).sum(dim=1) / (z.shape[1] + 1)
    torch.testing.assert_close(scores.values, expected.double(), atol=1e-5, rtol=0)


@pytest.mark.parametrize("order", ["morf", "lerf"])
def test_pixel_flipping_aopc_in_both_orders(linear, order: str) -> None:
    """MoRF: AOPC of the drops; LeRF: minus the AOPC of least-relevant-first drops."""
    model, batch, targets, attribution, w = linear
    metric = harness.get_metric(
        "faithfulness.pixel_flipping", pixels_per_step=8, output="logit", order=order
    )
    scores = metric.evaluate(model, batch, targets, attribution)
    base = batch.images.reshape(4, -1).amin(dim=1)
    z = _deleted_logits(batch.images, w, attribution.pixels, 8, base, order == "morf")
    start = (batch.images[:, 0] * w).sum(dim=(1, 2)).view(-1, 1)
    aopc = (start - z).sum(dim=1) / (z.shape[1] + 1)
    torch.testing.assert_close(scores.curves["logit"], z, atol=1e-5, rtol=0)
    expected = aopc if order == "morf" else -aopc
    torch.testing.assert_close(scores.values, expected.double(), atol=1e-5, rtol=0)


def test_pixel_flipping_rejects_an_unknown_order_or_baseline(linear) -> None:
    model, batch, targets, attribution, _ = linear
    metric = harness.get_metric("faithfulness.pixel_flipping", order="random")
    with pytest.raises(PluginError, match="order='random'"):
        metric.evaluate(model, batch, targets, attribution)
    # a bool is no baseline value (True would otherwise fall through to the blur)
    metric = harness.get_metric("faithfulness.pixel_flipping", baseline=True)
    with pytest.raises(PluginError, match="baseline=True"):
        metric.evaluate(model, batch, targets, attribution)


def test_deletion_and_pixel_flipping_share_forward_passes(linear) -> None:
    model, batch, targets, attribution, _ = linear
    flip = harness.get_metric("faithfulness.pixel_flipping", pixels_per_step=4, baseline="zero")
    delete = harness.get_metric("faithfulness.deletion_auc", pixels_per_step=4, baseline="zero")
    with _engine.count_forwards() as first:
        flipped = flip.evaluate(model, batch, targets, attribution)
    with _engine.count_forwards() as second:
        deleted = delete.evaluate(model, batch, targets, attribution)
    assert first.images == 4 * (HW // 4) + 4  # every step of every row, plus the clean batch
    assert second.images == 0
    curve = deleted.curves["probability"]
    torch.testing.assert_close(curve[:, 1:], flipped.curves["probability"])


def test_monotonicity_of_positive_linear_model_is_one_and_breaks_with_negative_weights(
    linear, wrap
) -> None:
    model, batch, targets, attribution, w = linear
    metric = harness.get_metric("faithfulness.monotonicity", pixels_per_step=4)
    assert metric.evaluate(model, batch, targets, attribution).values.tolist() == [1.0] * 4
    net = model.module
    with torch.no_grad():
        net[1].weight[0, ::3] *= -1  # some pixels now lower the target score when added
    signed = Attribution(pixels=batch.images[:, 0] * net[1].weight[0].view(SIZE, SIZE))
    assert metric.evaluate(model, batch, targets, signed).values.tolist() == [0.0] * 4


def test_imputation_of_one_pixel_is_the_weighted_neighbour_mean_plus_noise() -> None:
    x = torch.rand(1, 1, 5, 5, dtype=torch.float64)
    removed = torch.zeros(1, 1, 5, 5, dtype=torch.bool)
    removed[0, 0, 2, 2] = True  # interior: 4 direct neighbours at 1/6, 4 diagonal at 1/12
    removed[0, 0, 0, 0] = True  # corner: (0,1), (1,0) at 1/6 and (1,1) at 1/12, weights sum 5/12
    out = linear_imputation(x, removed)
    p = x[0, 0]
    direct = p[1, 2] + p[3, 2] + p[2, 1] + p[2, 3]
    diagonal = p[1, 1] + p[1, 3] + p[3, 1] + p[3, 3]
    assert torch.isclose(out[0, 0, 2, 2], direct / 6 + diagonal / 12, atol=1e-10)
    corner = (p[0, 1] / 6 + p[1, 0] / 6 + p[1, 1] / 12) / (5 / 12)
    assert torch.isclose(out[0, 0, 0, 0], corner, atol=1e-10)
    assert torch.equal(out[~removed], x[~removed])
    from harness.metrics.faithfulness._imputation import noisy_linear_imputation

    noisy = noisy_linear_imputation(x, removed, noise=0.01, seed=3, image_ids=torch.tensor([11]))
    draw = hashed_normal(3, torch.tensor([11]), 25).view(5, 5)
    assert torch.isclose(noisy[0, 0, 2, 2], out[0, 0, 2, 2] + 0.01 * draw[2, 2], atol=1e-10)


def test_imputation_matches_scipy_spsolve_reference() -> None:
    from quantus.functions.perturb_func import noisy_linear_imputation as quantus_imputation

    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 1, 12, 12, generator=g, dtype=torch.float64)
    counts = (10, 72, 140)  # a few holes, half the image, all but four pixels
    order = torch.argsort(torch.rand(3, 144, generator=g), dim=1)
    removed = torch.zeros(3, 144, dtype=torch.bool)
    for row, k in enumerate(counts):
        removed[row, order[row, :k]] = True
    ours = linear_imputation(x, removed.view(3, 1, 12, 12)).numpy()
    for row, k in enumerate(counts):
        ref = quantus_imputation(x[row].numpy(), order[row, :k].numpy(), noise=0.0)
        np.testing.assert_allclose(ours[row], ref, atol=1e-6)


@pytest.mark.parametrize("max_batch", [8, 64])  # first blocks of 2 and 4 steps
def test_monotonicity_stops_decided_rows_without_changing_values(linear, max_batch) -> None:
    model, batch, targets, attribution, w = linear
    # Against a 0.5 baseline, rows 0-1 (pixels above it) only gain when a pixel is
    # inserted; rows 2-3 (half their pixels below it) lose on some steps.
    images = batch.images.clone()
    images[:2] = 0.6 + 0.4 * images[:2].clamp(0, 1)
    images[2:] = images[2:].clamp(0, 1)
    batch = batch.with_images(images)
    attribution = Attribution(pixels=images[:, 0] * w)
    params = {"pixels_per_step": 2, "baseline": 0.5, "output": "logit"}
    full = harness.get_metric("faithfulness.monotonicity", full_curve=True, **params)
    early = harness.get_metric("faithfulness.monotonicity", **params)
    with _engine.configure(max_batch=max_batch, cache=False):
        with _engine.count_forwards() as every_step:
            expected = full.evaluate(model, batch, targets, attribution)
        with _engine.count_forwards() as decided:
            got = early.evaluate(model, batch, targets, attribution)
    assert expected.values.tolist() == [1.0, 1.0, 0.0, 0.0]
    assert got.values.tolist() == expected.values.tolist()
    assert every_step.images == 4 * HW // 2
    assert decided.images < every_step.images
    assert got.curves == {} and expected.curves["logit"].shape == (4, HW // 2)
