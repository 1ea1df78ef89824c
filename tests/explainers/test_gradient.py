"""Gradient explainers on a model that also reads tokens: hand-made gradients, completeness."""

from __future__ import annotations

import pytest
import torch
from harness_builtins.explainers.gradient.input_x_gradient import InputXGradient
from harness_builtins.explainers.gradient.integrated_gradients import IntegratedGradients
from harness_builtins.explainers.gradient.smoothgrad import SmoothGrad

from harness.contracts import Batch
from harness.errors import PluginError

TARGETS = torch.tensor([0, 1, 2, 1])


def _grad(model, batch: Batch, targets: torch.Tensor) -> torch.Tensor:
    """d logit_target / d image with each row's own tokens, straight from the module."""
    x = batch.images.clone().requires_grad_(True)
    out = model.module(x, batch.tokens).gather(1, targets[:, None]).sum()
    (grad,) = torch.autograd.grad(out, x)
    return grad


def _target_logits(model, batch: Batch, targets: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.logits(batch).gather(1, targets[:, None])[:, 0]


def test_input_x_gradient_equals_hand_computed(multimodal, mm_batch: Batch) -> None:
    got = InputXGradient().explain(multimodal, mm_batch, TARGETS).pixels
    expected = (mm_batch.images * _grad(multimodal, mm_batch, TARGETS))[:, 0]
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("baseline", ["zero", "min"])
def test_integrated_gradients_are_complete_with_own_tokens(
    multimodal, mm_batch: Batch, baseline: str
) -> None:
    multimodal.reset_counts()
    explainer = IntegratedGradients(n_steps=64, internal_batch_size=32, baseline=baseline)
    pixels = explainer.explain(multimodal, mm_batch, TARGETS).pixels
    images = mm_batch.images
    if baseline == "zero":
        start = torch.zeros_like(images)
    else:
        start = images.amin(dim=(1, 2, 3), keepdim=True).expand_as(images)
    delta = _target_logits(multimodal, mm_batch, TARGETS) - _target_logits(
        multimodal, mm_batch.with_images(start.clone()), TARGETS
    )
    assert float(delta.abs().min()) > 1e-2
    torch.testing.assert_close(pixels.sum(dim=(1, 2)), delta, rtol=2e-2, atol=1e-3)
    assert multimodal.max_rows <= 32 and multimodal.rows >= 4 * 64


def test_smoothgrad_without_noise_is_the_gradient(multimodal, mm_batch: Batch) -> None:
    grad = _grad(multimodal, mm_batch, TARGETS)[:, 0]
    signed = SmoothGrad(nt_samples=2, stdevs=0.0, absolute=False)
    torch.testing.assert_close(
        signed.explain(multimodal, mm_batch, TARGETS).pixels, grad, rtol=1e-4, atol=1e-7
    )
    magnitude = SmoothGrad(nt_samples=2, stdevs=0.0).explain(multimodal, mm_batch, TARGETS).pixels
    torch.testing.assert_close(magnitude, grad.abs(), rtol=1e-4, atol=1e-7)


def test_smoothgrad_is_seeded_and_batched(multimodal, mm_batch: Batch) -> None:
    explainer = SmoothGrad(nt_samples=8, nt_samples_batch_size=4, stdevs=0.2)
    runs = []
    for seed in (0, 0, 1):
        torch.manual_seed(seed)
        multimodal.reset_counts()
        runs.append(explainer.explain(multimodal, mm_batch, TARGETS).pixels)
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])
    assert multimodal.calls == 2 and multimodal.max_rows == 4 * 4
    noiseless = SmoothGrad(stdevs=0.0, nt_samples=1).explain(multimodal, mm_batch, TARGETS).pixels
    assert not torch.allclose(runs[0], noiseless, rtol=1e-2)


def test_smoothgrad_rows_do_not_depend_on_their_batch(multimodal, mm_batch: Batch) -> None:
    torch.manual_seed(3)
    whole = SmoothGrad(nt_samples=6, nt_samples_batch_size=4).explain(multimodal, mm_batch, TARGETS)
    torch.manual_seed(3)  # other passes (execution only), rows reversed and split in two
    per_pass = SmoothGrad(nt_samples=6, nt_samples_batch_size=1)
    order = torch.tensor([3, 2, 1, 0])
    parts = [
        per_pass.explain(multimodal, mm_batch.index(rows), TARGETS[rows]).pixels
        for rows in (order[:1], order[1:])
    ]
    torch.testing.assert_close(torch.cat(parts)[order.argsort()], whole.pixels)
    assert "nt_samples_batch_size" in SmoothGrad.execution_params


def test_smoothgrad_is_the_mean_gradient_over_its_documented_noise(
    multimodal, mm_batch: Batch
) -> None:
    from harness.draws import normal_rows, row_seeds

    torch.manual_seed(5)
    got = SmoothGrad(nt_samples=3, stdevs=0.3, absolute=False).explain(
        multimodal, mm_batch, TARGETS
    )
    images = mm_batch.images
    low = images.amin(dim=(1, 2, 3), keepdim=True)
    span = images.amax(dim=(1, 2, 3), keepdim=True) - low
    total = torch.zeros_like(images)
    for copy in range(3):
        keys = [f"{i}\0{copy}" for i in mm_batch.ids]
        noise = normal_rows(row_seeds("captum.smoothgrad", 5, keys), tuple(images.shape[1:]))
        noisy = mm_batch.with_images(images + 0.3 * span * noise)
        total += _grad(multimodal, noisy, TARGETS)
    torch.testing.assert_close(got.pixels, (total / 3)[:, 0], rtol=1e-4, atol=1e-6)


def test_negative_noise_is_refused(multimodal, mm_batch: Batch) -> None:
    with pytest.raises(PluginError, match=r"stdevs - expected a number >= 0.0, got -0.1"):
        SmoothGrad(stdevs=-0.1).explain(multimodal, mm_batch, TARGETS)
