"""Gradient-norm saliency: the absolute input gradient of the target logit, summed over channels."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from harness import (
    Attribution,
    Batch,
    CapabilityError,
    Explainer,
    ExplainerTags,
    Modality,
    Model,
    Need,
    Output,
)


class GradientNorm(Explainer):
    """Saliency ``sum_c |d logit[target] / d x_c|`` for image inputs.

    Parameters
    ----------
    normalise : bool
        Divide each row by its own maximum (rows stay independent).

    References
    ----------
    Simonyan, Vedaldi and Zisserman, "Deep Inside Convolutional Networks:
    Visualising Image Classification Models and Saliency Maps", 2014.
    """

    name: ClassVar[str] = "thirdparty.gradient_norm"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = "Simonyan et al. 2014, saliency maps"
    tags: ClassVar[ExplainerTags] = ExplainerTags(
        modalities=frozenset({Modality.IMAGE}),
        needs=frozenset({Need.GRADIENTS}),
        output=frozenset({Output.PIXEL}),
    )

    def __init__(self, *, normalise: bool = False) -> None:
        self.normalise = normalise

    def _explain(self, model: Model, batch: Batch, targets: Tensor) -> Attribution:
        if batch.images is None:
            raise CapabilityError(f"explainer {self.name!r} needs images", plugin=self.name)
        x = batch.images.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            logits = model.logits(batch.with_images(x))
            (grad,) = torch.autograd.grad(logits.gather(1, targets[:, None]).sum(), x)
        saliency = grad.abs().sum(dim=1)
        if self.normalise:
            peak = saliency.amax(dim=(1, 2), keepdim=True)
            saliency = saliency / peak.clamp(min=torch.finfo(saliency.dtype).tiny)
        return Attribution(pixels=saliency)
