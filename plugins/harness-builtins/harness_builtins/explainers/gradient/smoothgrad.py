"""SmoothGrad through Captum's NoiseTunnel over Saliency."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch
from torch import Tensor

from harness.contracts import Attribution, Batch, Explainer, ExplainerTags, Modality, Model, Need
from harness_builtins.explainers._common import (
    captum_forward,
    check_at_least,
    check_positive,
    images_of,
)


class SmoothGrad(Explainer):
    """Gradient magnitude averaged over noisy copies of the input.

    Captum's ``NoiseTunnel(Saliency)`` with ``nt_type="smoothgrad"``. The noise
    standard deviation is ``stdevs`` times *each image's* value range, as in the
    paper. Captum takes one standard deviation per input tensor, so the
    explainer hands Captum each image rescaled to [0, 1] and maps it back inside
    the forward function; the gradients are converted back to the original
    scale. Noisy copies run ``nt_samples_batch_size`` per image per pass.

    Parameters
    ----------
    nt_samples : int, default=16
        Noisy copies per image.
    stdevs : float, default=0.15
        Noise standard deviation as a fraction of each image's (max - min).
    nt_samples_batch_size : int, default=8
        Noisy copies per image in one forward pass (a pass holds N times this).
    absolute : bool, default=True
        Average absolute gradients (Captum's Saliency default); False keeps signs.

    References
    ----------
    D. Smilkov, N. Thorat, B. Kim, F. Viegas and M. Wattenberg, "SmoothGrad:
    removing noise by adding noise", arXiv:1706.03825, 2017.
    """

    name: ClassVar[str] = "captum.smoothgrad"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = (
        "Smilkov et al., SmoothGrad: removing noise by adding noise, arXiv:1706.03825, 2017"
    )
    tags: ClassVar[ExplainerTags] = ExplainerTags(
        modalities=frozenset({Modality.IMAGE, Modality.IMAGE_TEXT}),
        needs=frozenset({Need.GRADIENTS}),
        deterministic=False,
    )

    def __init__(
        self,
        *,
        nt_samples: int = 16,
        stdevs: float = 0.15,
        nt_samples_batch_size: int = 8,
        absolute: bool = True,
    ) -> None:
        self.nt_samples = nt_samples
        self.stdevs = stdevs
        self.nt_samples_batch_size = nt_samples_batch_size
        self.absolute = absolute

    @classmethod
    def conformance_instances(cls, tmp_dir: Path) -> list[SmoothGrad]:
        """Return small instances for the conformance kit."""
        return [cls(nt_samples=4, nt_samples_batch_size=2), cls(nt_samples=2, absolute=False)]

    def check_params(self) -> None:
        """Check the sample counts and the noise level."""
        check_positive(self.name, "nt_samples", self.nt_samples)
        check_positive(self.name, "nt_samples_batch_size", self.nt_samples_batch_size)
        check_at_least(self.name, "stdevs", self.stdevs, 0.0)

    def _explain(self, model: Model, batch: Batch, targets: Tensor) -> Attribution:
        from captum.attr import NoiseTunnel, Saliency

        images = images_of(batch, self.name).detach()
        forward, rows = captum_forward(model, batch)
        dims = tuple(range(1, images.dim()))
        low = images.amin(dim=dims, keepdim=True)
        tiny = max(1e-12, torch.finfo(images.dtype).tiny)  # 1e-12 is 0 in half precision
        span = (images.amax(dim=dims, keepdim=True) - low).clamp(min=tiny)

        def scaled_forward(unit: Tensor, index: Tensor) -> Tensor:
            return forward(unit * span[index] + low[index], index)

        with torch.enable_grad():
            grads = NoiseTunnel(Saliency(scaled_forward)).attribute(
                ((images - low) / span).requires_grad_(True),
                nt_type="smoothgrad",
                nt_samples=int(self.nt_samples),
                nt_samples_batch_size=int(self.nt_samples_batch_size),
                stdevs=float(self.stdevs),
                target=targets,
                additional_forward_args=(rows,),
                abs=bool(self.absolute),
            )
        return Attribution(pixels=grads.detach() / span)
