"""Superpixel features of LIME and KernelSHAP: SLIC or grid segments, one Captum call per image."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from harness.contracts import Batch, Model
from harness.draws import row_seeds
from harness_builtins.explainers._common import (
    BASELINES,
    baseline_images,
    captum_forward,
    check_at_least,
    check_choice,
    check_positive,
    images_of,
)

log = logging.getLogger(__name__)

SEGMENTATIONS: tuple[str, ...] = ("slic", "grid")


@dataclass(frozen=True)
class Superpixels:
    """How to cut images into features: ``"slic"`` (n_segments, compactness) or ``"grid"``."""

    segmentation: str = "slic"
    n_segments: int = 50
    compactness: float = 0.3
    grid_size: int = 8


def grid_segments(images: Tensor, grid_size: int) -> Tensor:
    """Return (N, H, W) labels of a ``grid_size`` x ``grid_size`` grid of cells, row-major."""
    n, _, h, w = images.shape
    rows = torch.arange(h, device=images.device) * grid_size // h
    cols = torch.arange(w, device=images.device) * grid_size // w
    cells = rows[:, None] * grid_size + cols[None, :]
    return cells.expand(n, h, w)


def slic_segments(images: Tensor, n_segments: int, compactness: float) -> Tensor:
    """Return (N, H, W) SLIC labels of each channel-mean image, scaled to [0, 1] first.

    SLIC is scikit-image's CPU code, run once per image; an image that SLIC
    leaves in fewer than two segments (a flat image) falls back to a grid of
    about ``n_segments`` cells.
    """
    from skimage.segmentation import slic

    gray = images.detach().float().mean(dim=1)
    lo = gray.amin(dim=(1, 2), keepdim=True)
    span = (gray.amax(dim=(1, 2), keepdim=True) - lo).clamp(min=1e-12)
    scaled = ((gray - lo) / span).cpu().numpy().astype(np.float64)
    labels = [
        slic(img, n_segments=n_segments, compactness=compactness, channel_axis=None, start_label=0)
        for img in scaled
    ]
    out = torch.from_numpy(np.stack(labels).astype(np.int64)).to(images.device)
    flat = out.amax(dim=(1, 2)) == out.amin(dim=(1, 2))
    if bool(flat.any()):
        log.warning("SLIC found one segment in %d image(s); using a grid there", int(flat.sum()))
        grid = grid_segments(images, max(2, round(math.sqrt(n_segments))))
        out = torch.where(flat[:, None, None], grid, out)
    return out


def check_perturbation(
    who: str, spec: Superpixels, baseline: str, n_samples: int, perturbations_per_eval: int
) -> None:
    """Raise PluginError for a bad superpixel, baseline or sampling parameter (``check_params``)."""
    check_choice(who, "segmentation", spec.segmentation, SEGMENTATIONS)
    if spec.segmentation == "grid":
        check_at_least(who, "grid_size", spec.grid_size, 2)
    else:
        check_at_least(who, "n_segments", spec.n_segments, 2)
        check_positive(who, "compactness", spec.compactness)
    check_positive(who, "n_samples", n_samples)
    check_positive(who, "perturbations_per_eval", perturbations_per_eval)
    check_choice(who, "baseline", baseline, BASELINES)


def segments(images: Tensor, spec: Superpixels) -> Tensor:
    """Return (N, H, W) integer feature labels for ``images`` following a checked ``spec``."""
    if spec.segmentation == "grid":
        return grid_segments(images, int(spec.grid_size))
    return slic_segments(images, int(spec.n_segments), float(spec.compactness))


def attribute_per_image(
    model: Model,
    batch: Batch,
    targets: Tensor,
    *,
    make: Callable[[Callable[[Tensor, Tensor], Tensor]], object],
    spec: Superpixels,
    baseline: str,
    who: str,
    n_samples: int,
    perturbations_per_eval: int,
) -> Tensor:
    """Run a Captum LIME-family method with a per-image feature mask; return (N, H, W).

    Captum fits one surrogate model per example and needs each example's own
    number of features, so it is called once per image (never per
    perturbation): each call evaluates its ``n_samples`` perturbations in
    batches of ``perturbations_per_eval`` rows on the model's device.

    Each image's perturbations are drawn from torch's CPU generator (Captum
    draws them there, then moves them to the model's device) seeded from
    (``who``, ``torch.initial_seed()``, its sample id), inside a forked random
    state: an image's map never depends on the images explained before it in
    the batch, and the caller's random stream is left as it was.
    """
    images = images_of(batch, who)
    labels = segments(images, spec)
    base = baseline_images(images, baseline)
    forward, rows = captum_forward(model, batch)
    method = make(forward)
    n, c, h, w = images.shape
    seeds = row_seeds(who, torch.initial_seed(), batch.ids)
    out = []
    for i in range(n):
        _, mask = torch.unique(labels[i], return_inverse=True)
        with torch.random.fork_rng(devices=[]):  # Captum draws the samples on the CPU
            torch.default_generator.manual_seed(seeds[i])  # (torch.manual_seed: every GPU's too)
            attr = method.attribute(  # type: ignore[attr-defined]
                images[i : i + 1].detach(),
                baselines=base[i : i + 1],
                target=targets[i : i + 1],
                additional_forward_args=(rows[i : i + 1],),
                feature_mask=mask.reshape(1, 1, h, w).expand(1, c, h, w),
                n_samples=int(n_samples),
                perturbations_per_eval=int(perturbations_per_eval),
            )
        out.append(attr[:, 0].detach())
    return torch.cat(out)
