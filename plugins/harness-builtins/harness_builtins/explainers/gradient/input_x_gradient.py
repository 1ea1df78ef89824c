"""Input x Gradient through Captum."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch
from torch import Tensor

from harness.contracts import Attribution, Batch, Explainer, ExplainerTags, Modality, Model, Need
from harness_builtins.explainers._common import captum_forward, images_of


class InputXGradient(Explainer):
    """Elementwise product of the input and the gradient of the explained logit.

    Captum's ``InputXGradient``: one forward and one backward pass for the whole
    batch; returns (N, C, H, W) signed attributions.

    References
    ----------
    A. Shrikumar, P. Greenside, A. Shcherbina and A. Kundaje, "Not Just a Black
    Box: Learning Important Features Through Propagating Activation
    Differences", arXiv:1605.01713, 2016.
    """

    name: ClassVar[str] = "captum.input_x_gradient"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = (
        "Shrikumar et al., Not Just a Black Box: Learning Important Features Through "
        "Propagating Activation Differences, arXiv:1605.01713, 2016"
    )
    tags: ClassVar[ExplainerTags] = ExplainerTags(
        modalities=frozenset({Modality.IMAGE, Modality.IMAGE_TEXT}),
        needs=frozenset({Need.GRADIENTS}),
        deterministic=True,
    )

    @classmethod
    def conformance_instances(cls, tmp_dir: Path) -> list[InputXGradient]:
        """Return small instances for the conformance kit."""
        return [cls()]

    def _explain(self, model: Model, batch: Batch, targets: Tensor) -> Attribution:
        from captum.attr import InputXGradient as CaptumInputXGradient

        images = images_of(batch, self.name).detach()
        forward, rows = captum_forward(model, batch)
        with torch.enable_grad():
            attr = CaptumInputXGradient(forward).attribute(
                images.requires_grad_(True), target=targets, additional_forward_args=(rows,)
            )
        return Attribution(pixels=attr.detach())
