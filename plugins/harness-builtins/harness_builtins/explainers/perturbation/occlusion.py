"""Occlusion through Captum: slide a baseline patch and record the logit change."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import ClassVar

from torch import Tensor

from harness.contracts import Attribution, Batch, Explainer, ExplainerTags, Modality, Model
from harness_builtins.explainers._common import (
    BASELINES,
    baseline_images,
    captum_forward,
    check_choice,
    check_positive,
    images_of,
)

log = logging.getLogger(__name__)


class Occlusion(Explainer):
    """Drop in the explained logit when a square patch is replaced by the baseline.

    Captum's ``Occlusion`` slides a ``window`` x ``window`` patch (all channels)
    with step ``stride``; each pixel gets the mean logit drop of the patches
    covering it. Each forward pass holds ``perturbations_per_eval`` patch
    positions for every image of the batch.

    Parameters
    ----------
    window : int, default=8
        Side of the occluding patch in pixels (at most the image's side: a
        larger window is reduced to it, with a warning).
    stride : int, default=4
        Step between patch positions in pixels.
    perturbations_per_eval : int, default=16
        Patch positions per forward pass (a pass holds N times this many images).
    baseline : {"mean", "zero", "min"}, default="mean"
        Patch value: the image's mean, 0 or its minimum.

    References
    ----------
    M. D. Zeiler and R. Fergus, "Visualizing and Understanding Convolutional
    Networks", ECCV 2014.
    """

    name: ClassVar[str] = "captum.occlusion"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = (
        "Zeiler and Fergus, Visualizing and Understanding Convolutional Networks, ECCV 2014"
    )
    tags: ClassVar[ExplainerTags] = ExplainerTags(
        modalities=frozenset({Modality.IMAGE, Modality.IMAGE_TEXT}),
        needs=frozenset(),
        deterministic=True,
    )
    execution_params: ClassVar[frozenset[str]] = frozenset({"perturbations_per_eval"})

    def __init__(
        self,
        *,
        window: int = 8,
        stride: int = 4,
        perturbations_per_eval: int = 16,
        baseline: str = "mean",
    ) -> None:
        self.window = window
        self.stride = stride
        self.perturbations_per_eval = perturbations_per_eval
        self.baseline = baseline

    @classmethod
    def conformance_instances(cls, tmp_dir: Path) -> list[Occlusion]:
        """Return small instances for the conformance kit."""
        return [cls(window=4, stride=4), cls(window=3, stride=2, baseline="zero")]

    def check_params(self) -> None:
        """Check the window, stride, batch and baseline parameters."""
        for param in ("window", "stride", "perturbations_per_eval"):
            check_positive(self.name, param, getattr(self, param))
        check_choice(self.name, "baseline", self.baseline, BASELINES)

    def _explain(self, model: Model, batch: Batch, targets: Tensor) -> Attribution:
        from captum.attr import Occlusion as CaptumOcclusion

        images = images_of(batch, self.name).detach()
        c, h, w = images.shape[1:]
        window = min(int(self.window), h, w)
        if window < int(self.window):
            log.warning(
                "%s: window=%d is larger than the %d x %d images; occluding %d x %d patches",
                self.name, self.window, h, w, window, window,
            )  # fmt: skip
        forward, rows = captum_forward(model, batch)
        attr = CaptumOcclusion(forward).attribute(
            images,
            sliding_window_shapes=(c, window, window),
            strides=(c, int(self.stride), int(self.stride)),
            baselines=baseline_images(images, self.baseline),
            target=targets,
            additional_forward_args=(rows,),
            perturbations_per_eval=int(self.perturbations_per_eval),
        )
        return Attribution(pixels=attr[:, 0].detach())
