"""Grad-CAM through Captum's LayerGradCam, upsampled to the input size."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import ClassVar

import torch
from torch import Tensor

from harness.contracts import Attribution, Batch, Explainer, ExplainerTags, Modality, Model, Need
from harness_builtins.explainers._common import captum_forward, images_of
from harness_builtins.explainers.cam._common import cam_layer, upsample

log = logging.getLogger(__name__)


class GradCAM(Explainer):
    """Gradient-weighted class activation map of a convolutional layer.

    Each channel of the layer's activations ``A`` is weighted by the spatial mean
    of the gradient of the explained logit (a class, or a label of a multi-label
    model) with respect to it; the weighted sum over channels is passed through a
    ReLU and bilinearly upsampled to the input size. The whole batch takes one
    forward and one backward pass.

    Parameters
    ----------
    relu : bool, default=True
        Keep only positive evidence, as in the paper; False returns the signed map.
    layer : str or None, default=None
        Dotted name of the layer to explain (e.g. ``"layer3"``); None uses the
        model's target layer.

    References
    ----------
    R. R. Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
    Gradient-based Localization", ICCV 2017.
    """

    name: ClassVar[str] = "captum.grad_cam"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = (
        "Selvaraju et al., Grad-CAM: Visual Explanations from Deep Networks via "
        "Gradient-based Localization, ICCV 2017"
    )
    tags: ClassVar[ExplainerTags] = ExplainerTags(
        modalities=frozenset({Modality.IMAGE, Modality.IMAGE_TEXT}),
        needs=frozenset({Need.GRADIENTS, Need.TARGET_LAYER}),
        deterministic=True,
    )

    def __init__(self, *, relu: bool = True, layer: str | None = None) -> None:
        self.relu = relu
        self.layer = layer

    @classmethod
    def conformance_instances(cls, tmp_dir: Path) -> list[GradCAM]:
        """Return small instances for the conformance kit."""
        return [cls(), cls(relu=False)]

    def _explain(self, model: Model, batch: Batch, targets: Tensor) -> Attribution:
        from captum.attr import LayerGradCam

        images = images_of(batch, self.name)
        layer = cam_layer(model, self.layer, self.name)
        forward, rows = captum_forward(model, batch)
        x = images.detach().requires_grad_(True)
        with torch.enable_grad():
            cam = LayerGradCam(forward, layer).attribute(
                x,
                target=targets,
                additional_forward_args=(rows,),
                relu_attributions=bool(self.relu),
            )
        if isinstance(cam, tuple):
            cam = cam[0]
        log.debug(
            "%s: layer map %s -> %s", self.name, tuple(cam.shape[-2:]), tuple(images.shape[-2:])
        )
        pixels = upsample(cam.detach()[:, 0], (images.shape[-2], images.shape[-1]))
        return Attribution(pixels=pixels)
