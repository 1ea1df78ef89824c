"""Mass in mask: the share of attribution mass that falls inside the target's ground truth."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from harness import (
    Attribution,
    Batch,
    CapabilityError,
    Explainer,
    ExplanationMetric,
    MetricKind,
    MetricTags,
    Modality,
    Model,
    Need,
)


class MassInMask(ExplanationMetric):
    """Attribution mass inside the target's mask over the total mass, per row.

    A row without any mass scores 0.

    Parameters
    ----------
    positive_only : bool
        Count positive attributions only (else absolute values).

    References
    ----------
    Arras, Osman and Samek, "CLEVR-XAI: A benchmark dataset for the ground
    truth evaluation of neural network explanations", 2022 (relevance mass).
    """

    name: ClassVar[str] = "thirdparty.mass_in_mask"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = "Arras et al. 2022, relevance mass accuracy"
    tags: ClassVar[MetricTags] = MetricTags(
        kind=MetricKind.LOCALISATION,
        needs=frozenset({Need.MASKS, Need.PIXEL_ATTRIBUTIONS}),
        modalities=frozenset({Modality.IMAGE, Modality.IMAGE_TEXT}),
    )
    higher_is_better: ClassVar[bool] = True
    bounds: ClassVar[tuple[float, float] | None] = (0.0, 1.0)

    def __init__(self, *, positive_only: bool = True) -> None:
        self.positive_only = positive_only

    def _score(
        self,
        model: Model,
        batch: Batch,
        targets: Tensor,
        attribution: Attribution,
        explainer: Explainer | None,
    ) -> Tensor:
        pixels = attribution.pixels
        if pixels is None:
            raise CapabilityError(
                f"metric {self.name!r} needs pixel attributions", plugin=self.name
            )
        mass = pixels.clamp(min=0) if self.positive_only else pixels.abs()
        inside = (mass * batch.target_masks(targets).to(mass.dtype)).sum(dim=(1, 2))
        total = mass.sum(dim=(1, 2))
        return torch.where(total > 0, inside / total.clamp(min=torch.finfo(mass.dtype).tiny), 0.0)
