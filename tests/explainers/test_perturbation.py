"""LIME, KernelSHAP and Occlusion: superpixel structure, batching, seeds, exact small cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _explainer_toys import TinyCNN, make_batch
from harness_builtins.explainers.perturbation._common import Superpixels, grid_segments, segments
from harness_builtins.explainers.perturbation.kernel_shap import KernelShap
from harness_builtins.explainers.perturbation.lime import Lime
from harness_builtins.explainers.perturbation.occlusion import Occlusion
from skimage.segmentation import slic

from harness.contracts import Batch
from harness.errors import PluginError

SURROGATES = [Lime, KernelShap]


def test_grid_segments_are_row_major_cells() -> None:
    labels = grid_segments(torch.zeros(2, 1, 16, 12), 4)
    r, c = np.meshgrid(np.arange(16), np.arange(12), indexing="ij")
    expected = (r // 4) * 4 + c // 3
    assert labels.shape == (2, 16, 12)
    np.testing.assert_array_equal(labels[1].numpy(), expected)


def test_slic_segments_equal_scikit_image_on_the_scaled_gray_image() -> None:
    batch = make_batch(2, 32, channels=3, seed=1)
    spec = Superpixels("slic", n_segments=20, compactness=0.3)
    labels = segments(batch.images, spec)
    for i in range(2):
        gray = batch.images[i].mean(dim=0).double().numpy()
        gray = (gray - gray.min()) / (gray.max() - gray.min())
        ref = slic(gray, n_segments=20, compactness=0.3, channel_axis=None, start_label=0)
        np.testing.assert_array_equal(labels[i].numpy(), ref)
        assert len(np.unique(ref)) >= 5


@pytest.mark.parametrize("cls", SURROGATES)
@pytest.mark.parametrize("segmentation", ["slic", "grid"])
def test_attributions_are_constant_within_each_superpixel(
    cls, segmentation: str, tiny_cnn: TinyCNN
) -> None:
    batch = make_batch(3, 32, seed=2)
    explainer = cls(
        n_samples=48,
        perturbations_per_eval=48,
        segmentation=segmentation,
        n_segments=12,
        grid_size=4,
    )
    torch.manual_seed(0)
    pixels = explainer.explain(tiny_cnn, batch, torch.tensor([0, 1, 2])).pixels
    assert pixels.shape == (3, 32, 32)
    labels = segments(batch.images, Superpixels(segmentation, 12, 0.3, 4))
    for i in range(3):
        ids = labels[i].unique()
        assert len(ids) >= 4
        for s in ids:
            values = pixels[i][labels[i] == s]
            assert bool((values == values[0]).all())
        assert len(pixels[i].unique()) <= len(ids)


@pytest.mark.parametrize("cls", SURROGATES)
def test_same_seed_same_attributions(cls, tiny_cnn: TinyCNN, batch: Batch) -> None:
    explainer = cls(n_samples=32, perturbations_per_eval=32, segmentation="grid", grid_size=4)
    targets = torch.tensor([0, 1, 2, 0])
    runs = []
    for seed in (0, 0, 1):
        torch.manual_seed(seed)
        runs.append(explainer.explain(tiny_cnn, batch, targets).pixels)
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])


@pytest.mark.parametrize("cls", SURROGATES)
def test_perturbations_run_in_large_batches(cls, tiny_cnn: TinyCNN, batch: Batch) -> None:
    explainer = cls(n_samples=96, perturbations_per_eval=64, segmentation="grid", grid_size=4)
    tiny_cnn.reset_counts()
    torch.manual_seed(0)
    explainer.explain(tiny_cnn, batch, torch.tensor([0, 1, 2, 0]))
    assert tiny_cnn.rows == 4 * 96
    assert tiny_cnn.calls == 4 * math.ceil(96 / 64)
    assert tiny_cnn.max_rows == 64


def test_kernel_shap_values_add_up_with_each_rows_own_tokens(multimodal, mm_batch: Batch) -> None:
    targets = torch.tensor([0, 1, 2, 1])
    explainer = KernelShap(n_samples=64, segmentation="grid", grid_size=2, baseline="zero")
    torch.manual_seed(0)
    pixels = explainer.explain(multimodal, mm_batch, targets).pixels
    coefs = pixels[:, ::8, ::8].flatten(1)  # one pixel of each of the 2 x 2 cells
    zeros = mm_batch.with_images(torch.zeros_like(mm_batch.images))
    with torch.no_grad():
        full = multimodal.logits(mm_batch).gather(1, targets[:, None])[:, 0]
        empty = multimodal.logits(zeros).gather(1, targets[:, None])[:, 0]
    torch.testing.assert_close(coefs.sum(dim=1), full - empty, rtol=1e-3, atol=1e-4)


def _occlusion_by_hand(model, batch: Batch, targets: torch.Tensor, window: int) -> torch.Tensor:
    images = batch.images
    size = images.shape[-1]
    with torch.no_grad():
        full = model.logits(batch).gather(1, targets[:, None])[:, 0]
        out = torch.zeros(images.shape[0], size, size)
        for r in range(0, size, window):
            for c in range(0, size, window):
                occluded = images.clone()
                occluded[:, :, r : r + window, c : c + window] = 0
                score = model.logits(batch.with_images(occluded)).gather(1, targets[:, None])[:, 0]
                out[:, r : r + window, c : c + window] = (full - score)[:, None, None]
    return out


def test_occlusion_equals_patchwise_logit_drop_with_own_tokens(multimodal, mm_batch: Batch) -> None:
    targets = torch.tensor([0, 1, 2, 1])
    expected = _occlusion_by_hand(multimodal, mm_batch, targets, 4)
    multimodal.reset_counts()
    explainer = Occlusion(window=4, stride=4, perturbations_per_eval=8, baseline="zero")
    got = explainer.explain(multimodal, mm_batch, targets).pixels
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert multimodal.calls == 1 + math.ceil(16 / 8) and multimodal.max_rows == 4 * 8


@pytest.mark.parametrize(
    ("explainer", "message"),
    [
        (Lime(segmentation="felzenszwalb"), r"segmentation - expected one of \['grid', 'slic'\]"),
        (KernelShap(baseline="black"), r"baseline - expected one of"),
        (Occlusion(window=0), r"window - expected a positive number, got 0"),
        (KernelShap(segmentation="grid", grid_size=1), r"grid_size - expected a number >= 2"),
    ],
)
def test_bad_parameters_name_what_was_expected(explainer, message, tiny_cnn, batch) -> None:
    with pytest.raises(PluginError, match=message):
        explainer.explain(tiny_cnn, batch, torch.zeros(4, dtype=torch.long))


def test_a_window_larger_than_the_image_is_reduced_with_a_warning(tiny_cnn, batch, caplog) -> None:
    targets = torch.zeros(4, dtype=torch.long)
    size = batch.images.shape[-1]
    with caplog.at_level("WARNING"):
        wide = Occlusion(window=1000, stride=4).explain(tiny_cnn, batch, targets).pixels
    assert f"window=1000 is larger than the {size} x {size} images" in caplog.text
    whole = Occlusion(window=size, stride=4).explain(tiny_cnn, batch, targets).pixels
    torch.testing.assert_close(wide, whole)
