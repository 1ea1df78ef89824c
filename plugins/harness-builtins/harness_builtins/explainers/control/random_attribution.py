"""Random-attribution control: uniform noise that ignores the model."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import ClassVar

import torch
from torch import Tensor

from harness.contracts import Attribution, Batch, Explainer, ExplainerTags, Modality, Model, Output
from harness.errors import CapabilityError


class RandomAttribution(Explainer):
    """Uniform random attributions in [0, 1), the floor every explainer must beat.

    Each row's values come from a ``torch.Generator`` on the model's device
    seeded with a BLAKE2b hash of ``seed``, the sample id and the row's pixels
    (and tokens): the same input gets the same map in any batch, at any
    position, on every run, while any change of the input (a perturbed copy in
    a robustness metric) gets fresh noise. The maps depend on neither the model
    nor the target. Image batches get pixel maps (N, H, W), token batches token
    scores (N, L), image+text batches both.

    Parameters
    ----------
    seed : int, default=0
        Seed of the generator; each call restarts from it.

    References
    ----------
    J. Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018 (random
    baselines as controls for saliency evaluation).
    """

    name: ClassVar[str] = "control.random"
    version: ClassVar[str] = "2"  # 2: keyed per row (1: one stream per call, by position)
    citation: ClassVar[str] = "Adebayo et al., Sanity Checks for Saliency Maps, NeurIPS 2018"
    tags: ClassVar[ExplainerTags] = ExplainerTags(
        modalities=frozenset(Modality),
        needs=frozenset(),
        output=frozenset({Output.PIXEL, Output.TOKEN}),
        target_sensitive=False,
    )

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = seed

    @classmethod
    def conformance_instances(cls, tmp_dir: Path) -> list[RandomAttribution]:
        """Return small instances for the conformance kit."""
        return [cls(), cls(seed=1)]

    def _explain(self, model: Model, batch: Batch, targets: Tensor) -> Attribution:
        images, tokens = batch.images, batch.tokens
        if images is None and tokens is None:
            raise CapabilityError(
                f"explainer {self.name!r}: batch - expected images or tokens, got neither.",
                plugin=self.name,
            )
        device = model.device
        n = len(batch)
        pixels = None if images is None else torch.empty((n, *images.shape[2:]), device=device)
        scores = None if tokens is None else torch.empty(tuple(tokens.shape), device=device)
        keyed = [t.detach().cpu().contiguous() for t in (images, tokens) if t is not None]
        generator = torch.Generator(device=device)
        for i, sample in enumerate(batch.ids):
            digest = hashlib.blake2b(f"{int(self.seed)}\0{sample}\0".encode(), digest_size=8)
            for tensor in keyed:
                digest.update(tensor[i].flatten().view(torch.uint8).numpy().tobytes())
            generator.manual_seed(int.from_bytes(digest.digest(), "big") & (2**63 - 1))
            for out in (pixels, scores):
                if out is not None:
                    torch.rand(out.shape[1:], generator=generator, device=device, out=out[i])
        return Attribution(pixels=pixels, tokens=scores)
