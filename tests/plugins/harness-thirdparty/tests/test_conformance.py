"""The plugin's own tests: the harness conformance kit, plus hand-checked values."""

from __future__ import annotations

from importlib import metadata

import pytest
import torch
from harness_thirdparty.checkerboard import Checkerboard
from harness_thirdparty.gradient_norm import GradientNorm
from harness_thirdparty.mass_in_mask import MassInMask

from harness import Attribution, Batch
from harness.testing import parametrize_with_checks
from harness.testing.fixtures import ToyCNN


@parametrize_with_checks(
    [
        Checkerboard(),
        Checkerboard(n=12, size=16, patch=4, seed=3),
        GradientNorm(),
        GradientNorm(normalise=True),
        MassInMask(),
        MassInMask(positive_only=False),
    ]
)
def test_plugin_conforms(plugin, check):
    check(plugin)


def test_checkerboard_mask_covers_the_patch():
    data = Checkerboard(n=4, size=16, patch=8)
    batch = data.load(["board-0000", "board-0001"])
    assert batch.masks is not None and batch.images is not None
    for row, label in enumerate(batch.labels.tolist()):
        mask = batch.masks[row, label]
        assert int(mask.sum()) == 64
        assert not bool(batch.masks[row, 1 - label].any())
        values = set(batch.images[row, 0][mask].tolist())
        assert values == {0.0, 1.0}


def test_mass_in_mask_hand_computed():
    masks = torch.zeros(2, 2, 4, 4, dtype=torch.bool)
    masks[0, 0, :2, :2] = True
    masks[1, 1, 2:, 2:] = True
    batch = Batch(
        ids=("a", "b"), labels=torch.tensor([0, 1]), images=torch.zeros(2, 1, 4, 4), masks=masks
    )
    pixels = torch.zeros(2, 4, 4)
    pixels[0, 0, 0] = 3.0  # inside
    pixels[0, 3, 3] = 1.0  # outside -> 3 / 4
    pixels[1, 0, 0] = -5.0  # negative: ignored when positive_only
    model = ToyCNN()
    model.build(Checkerboard().info())

    scores = MassInMask().score(model, batch, batch.labels, Attribution(pixels=pixels))
    assert scores.tolist() == [0.75, 0.0]
    absolute = MassInMask(positive_only=False).score(
        model, batch, batch.labels, Attribution(pixels=pixels)
    )
    assert absolute.tolist() == [0.75, 0.0]


def test_gradient_norm_is_zero_where_the_model_does_not_look():
    data = Checkerboard(n=4)
    model = ToyCNN()
    model.build(data.info())
    batch = data.load(["board-0002", "board-0003"])
    saliency = GradientNorm().explain(model, batch, batch.labels).pixels
    assert saliency is not None and saliency.shape == (2, 24, 24)
    assert bool((saliency >= 0).all()) and float(saliency.sum()) > 0


def test_discovered_through_the_entry_point():
    if not any(ep.name == "thirdparty" for ep in metadata.entry_points(group="harness")):
        pytest.skip("harness-thirdparty is not installed; running from the source tree")
    from harness.plugin_manager import discover

    registries = discover()
    assert "thirdparty.checkerboard" in registries.datasets.names()
    assert "thirdparty.gradient_norm" in registries.explainers.names()
    assert "thirdparty.mass_in_mask" in registries.metrics.names()
    assert registries.datasets.entry("thirdparty.checkerboard").distribution == "harness-thirdparty"
