"""Controls: Sobel equals SciPy's, random maps are reproducible and ignore the model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _explainer_toys import TinyCNN, info_for, make_batch
from harness_builtins.explainers.control.edge_detector import SobelEdges
from harness_builtins.explainers.control.random_attribution import RandomAttribution
from scipy import ndimage

from harness.contracts import Batch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("channels", [1, 3])
def test_sobel_equals_scipy_magnitude(tiny_cnn: TinyCNN, channels: int) -> None:
    batch = make_batch(3, 20, channels=channels, seed=2)
    model = tiny_cnn
    if channels == 3:
        model = TinyCNN(channels=3)
        model.build(info_for(3))
    got = SobelEdges().explain(model, batch, torch.zeros(3, dtype=torch.long)).pixels
    for i in range(3):
        gray = batch.images[i].mean(dim=0).double().numpy()
        expected = np.hypot(ndimage.sobel(gray, axis=0), ndimage.sobel(gray, axis=1))
        np.testing.assert_allclose(got[i].numpy(), expected, rtol=1e-5, atol=1e-5)


def test_sobel_ignores_model_and_target(tiny_cnn: TinyCNN, batch: Batch) -> None:
    other = TinyCNN(seed=9)
    other.build(info_for(3))
    a = SobelEdges().explain(tiny_cnn, batch, torch.zeros(4, dtype=torch.long)).pixels
    b = SobelEdges().explain(other, batch, torch.full((4,), 2)).pixels
    assert torch.equal(a, b)


def test_random_is_reproducible_seeded_and_model_independent(
    tiny_cnn: TinyCNN, batch: Batch
) -> None:
    other = TinyCNN(seed=9)
    other.build(info_for(3))
    targets = torch.zeros(4, dtype=torch.long)
    torch.manual_seed(0)
    a = RandomAttribution(seed=3).explain(tiny_cnn, batch, targets).pixels
    torch.manual_seed(1)
    b = RandomAttribution(seed=3).explain(other, batch, torch.full((4,), 2)).pixels
    c = RandomAttribution(seed=4).explain(tiny_cnn, batch, targets).pixels
    assert a.shape == (4, 16, 16) and torch.equal(a, b) and not torch.equal(a, c)
    assert float(a.min()) >= 0 and float(a.max()) < 1
    assert not torch.equal(a[0], a[1])
    assert tiny_cnn.calls == 0 and other.calls == 0


def test_random_maps_are_keyed_by_row_not_by_batch_position(
    tiny_cnn: TinyCNN, batch: Batch
) -> None:
    """A row's map is the same alone, reordered or in another batch; a changed input gets new noise."""
    explainer = RandomAttribution(seed=3)
    targets = torch.zeros(4, dtype=torch.long)
    whole = explainer.explain(tiny_cnn, batch, targets).pixels
    order = torch.tensor([2, 0, 3, 1])
    shuffled = explainer.explain(tiny_cnn, batch.index(order), targets).pixels
    assert torch.equal(shuffled, whole[order])
    for i in range(4):
        alone = explainer.explain(tiny_cnn, batch.index(torch.tensor([i])), targets[:1]).pixels
        assert torch.equal(alone[0], whole[i])
    nudged = batch.with_images(batch.images + 1e-3)  # same ids, other pixels
    moved = explainer.explain(tiny_cnn, nudged, targets).pixels
    assert all(not torch.equal(moved[i], whole[i]) for i in range(4))
    twins = batch.index(torch.tensor([0, 0]))  # one input twice: one map
    repeated = explainer.explain(tiny_cnn, twins, targets[:2]).pixels
    assert torch.equal(repeated[0], repeated[1]) and torch.equal(repeated[0], whole[0])


def test_random_scores_tokens_of_text_batches(multimodal, mm_batch: Batch) -> None:
    out = RandomAttribution().explain(multimodal, mm_batch, torch.zeros(4, dtype=torch.long))
    assert out.pixels.shape == (4, 16, 16)
    assert out.tokens is not None and out.tokens.shape == mm_batch.tokens.shape
    text_only = Batch(ids=mm_batch.ids, labels=mm_batch.labels, tokens=mm_batch.tokens)
    out = RandomAttribution().explain(multimodal, text_only, torch.zeros(4, dtype=torch.long))
    assert out.pixels is None and out.tokens.shape == (4, 5)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("cls", [RandomAttribution, SobelEdges])
def test_controls_follow_the_model_device(cls: type, device: str, batch: Batch) -> None:
    model = TinyCNN()
    model.build(info_for(3))
    model.to(device)
    out = cls().explain(model, batch, torch.zeros(4, dtype=torch.long))
    assert out.pixels.device.type == device
