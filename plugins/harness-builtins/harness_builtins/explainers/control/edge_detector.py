"""Sobel edge-detector control: image gradient magnitude, ignoring the model."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from harness.contracts import Attribution, Batch, Explainer, ExplainerTags, Modality, Model
from harness_builtins.explainers._common import images_of


def sobel_magnitude(images: Tensor) -> Tensor:
    """Return the (N, H, W) Sobel gradient magnitude of the channel-mean image.

    Equal to ``hypot(scipy.ndimage.sobel(x, 0), scipy.ndimage.sobel(x, 1))`` with
    scipy's default ``mode="reflect"``, which for a 3x3 kernel is edge replication.
    """
    gray = images.mean(dim=1, keepdim=True)
    smooth = torch.tensor([1.0, 2.0, 1.0], dtype=gray.dtype, device=gray.device)
    diff = torch.tensor([-1.0, 0.0, 1.0], dtype=gray.dtype, device=gray.device)
    kernels = torch.stack([torch.outer(diff, smooth), torch.outer(smooth, diff)]).unsqueeze(1)
    padded = F.pad(gray, (1, 1, 1, 1), mode="replicate")
    grads = F.conv2d(padded, kernels)
    magnitude: Tensor = torch.linalg.vector_norm(grads, dim=1)
    return magnitude


class SobelEdges(Explainer):
    """Sobel edge magnitude of the image, a control that ignores the model and the target.

    A metric that cannot rank this control below a real explainer measures image
    structure, not the model. Multi-channel images are averaged over channels first.

    References
    ----------
    I. Sobel and G. Feldman, "A 3x3 Isotropic Gradient Operator for Image
    Processing", Stanford AI Project, 1968. J. Adebayo et al., "Sanity Checks for
    Saliency Maps", NeurIPS 2018 (edge detectors as model-independent controls).
    """

    name: ClassVar[str] = "control.sobel"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = (
        "Sobel and Feldman, A 3x3 Isotropic Gradient Operator for Image Processing, 1968; "
        "Adebayo et al., Sanity Checks for Saliency Maps, NeurIPS 2018"
    )
    tags: ClassVar[ExplainerTags] = ExplainerTags(
        modalities=frozenset({Modality.IMAGE, Modality.IMAGE_TEXT}),
        needs=frozenset(),
        deterministic=True,
        target_sensitive=False,
    )

    @classmethod
    def conformance_instances(cls, tmp_dir: Path) -> list[SobelEdges]:
        """Return small instances for the conformance kit."""
        return [cls()]

    def _explain(self, model: Model, batch: Batch, targets: Tensor) -> Attribution:
        images = images_of(batch, self.name)
        return Attribution(pixels=sobel_magnitude(images.detach().float()))
