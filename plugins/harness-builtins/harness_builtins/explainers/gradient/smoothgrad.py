"""SmoothGrad through Captum's NoiseTunnel over Saliency."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch
from torch import Tensor

from harness.contracts import Attribution, Batch, Explainer, ExplainerTags, Modality, Model, Need
from harness.draws import normal_rows, row_seeds
from harness_builtins.explainers._common import (
    captum_forward,
    check_at_least,
    check_positive,
    images_of,
)


class SmoothGrad(Explainer):
    """Gradient magnitude averaged over noisy copies of the input.

    The mean of Captum's ``Saliency`` over ``nt_samples`` noisy copies of each
    image (what ``NoiseTunnel(Saliency)`` with ``nt_type="smoothgrad"``
    computes). The noise standard deviation is ``stdevs`` times *each image's*
    value range, as in the paper: each image is rescaled to [0, 1], noised, and
    mapped back inside the forward function; the gradients are converted back
    to the original scale. Each copy's noise comes from its own generator,
    seeded from torch's seed (``torch.initial_seed()``, set by the runner for
    each stage), the sample id and the copy's index, so a row's map is the same
    in any batch, at any position and for any ``nt_samples_batch_size``
    (Captum's noise tunnel draws one stream for the whole batch). Noisy copies
    run ``nt_samples_batch_size`` per image per pass.

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
    version: ClassVar[str] = "2"  # 2: noise per (sample id, copy), not one stream per batch
    citation: ClassVar[str] = (
        "Smilkov et al., SmoothGrad: removing noise by adding noise, arXiv:1706.03825, 2017"
    )
    tags: ClassVar[ExplainerTags] = ExplainerTags(
        modalities=frozenset({Modality.IMAGE, Modality.IMAGE_TEXT}),
        needs=frozenset({Need.GRADIENTS}),
        deterministic=False,
    )
    execution_params: ClassVar[frozenset[str]] = frozenset({"nt_samples_batch_size"})

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
        from captum.attr import Saliency

        images = images_of(batch, self.name).detach()
        forward, rows = captum_forward(model, batch)
        n, shape = len(images), tuple(images.shape[1:])
        dims = tuple(range(1, images.dim()))
        low = images.amin(dim=dims, keepdim=True)
        tiny = max(1e-12, torch.finfo(images.dtype).tiny)  # 1e-12 is 0 in half precision
        span = (images.amax(dim=dims, keepdim=True) - low).clamp(min=tiny)
        unit = ((images - low) / span).unsqueeze(1)

        def scaled_forward(noisy: Tensor, index: Tensor) -> Tensor:
            return forward(noisy * span[index] + low[index], index)

        saliency = Saliency(scaled_forward)
        samples, per_pass = int(self.nt_samples), int(self.nt_samples_batch_size)
        seed = torch.initial_seed()
        total = torch.zeros_like(images)
        for first in range(0, samples, per_pass):
            copies = range(first, min(samples, first + per_pass))
            keys = [f"{i}\0{c}" for i in batch.ids for c in copies]
            noise = normal_rows(
                row_seeds(self.name, seed, keys), shape, device=images.device, dtype=images.dtype
            ).view(n, len(copies), *shape)
            noisy = (unit + noise.mul_(float(self.stdevs))).flatten(0, 1)
            with torch.enable_grad():
                grads = saliency.attribute(
                    noisy.requires_grad_(True),
                    target=targets.repeat_interleave(len(copies)),
                    additional_forward_args=(rows.repeat_interleave(len(copies)),),
                    abs=bool(self.absolute),
                )
            total += grads.detach().view(n, len(copies), *shape).sum(dim=1)
        return Attribution(pixels=total / samples / span)
