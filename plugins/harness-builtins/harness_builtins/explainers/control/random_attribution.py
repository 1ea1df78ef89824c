"""Random-attribution control: uniform noise that ignores the model."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch
from torch import Tensor

from harness.contracts import Attribution, Batch, Explainer, ExplainerTags, Modality, Model, Output
from harness.errors import CapabilityError


class RandomAttribution(Explainer):
    """Uniform random attributions in [0, 1), the floor every explainer must beat.

    The values come from a ``torch.Generator`` on the model's device seeded with
    ``seed``, so a rerun of the same batch gives the same maps; they depend on
    neither the model nor the target. Image batches get pixel maps (N, H, W),
    token batches token scores (N, L), image+text batches both.

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
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = "Adebayo et al., Sanity Checks for Saliency Maps, NeurIPS 2018"
    tags: ClassVar[ExplainerTags] = ExplainerTags(
        modalities=frozenset(Modality),
        needs=frozenset(),
        deterministic=False,
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
        device = model.device
        generator = torch.Generator(device=device).manual_seed(int(self.seed))
        pixels = tokens = None
        if batch.images is not None:
            n, _, h, w = batch.images.shape
            pixels = torch.rand((n, h, w), generator=generator, device=device)
        if batch.tokens is not None:
            tokens = torch.rand(tuple(batch.tokens.shape), generator=generator, device=device)
        if pixels is None and tokens is None:
            raise CapabilityError(
                f"explainer {self.name!r}: batch - expected images or tokens, got neither.",
                plugin=self.name,
            )
        return Attribution(pixels=pixels, tokens=tokens)
