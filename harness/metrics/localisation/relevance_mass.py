"""Relevance mass accuracy (Arras et al., 2022): share of relevance inside the mask."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from harness.metrics._params import flag
from harness.metrics.localisation._common import MaskMetric


class RelevanceMassAccuracy(MaskMetric):
    """``R_within / R_total``: the relevance inside the mask over all relevance.

    As in Arras et al., only positive relevance counts (negative values are set
    to 0 first), so the score lies in [0, 1]; a map without positive relevance
    scores 0. No bounds are declared: with ``positive_only=False`` a signed
    total near zero makes the ratio unbounded. Quantus 0.6 sums the signed
    values (and divides by the batch maximum by default); on non-negative maps
    it equals
    ``quantus.RelevanceMassAccuracy(abs=False, normalise=False)``.

    Parameters
    ----------
    positive_only : bool, default=True
        Clip negative relevance to 0 (the paper's choice); False sums signed
        values as Quantus does (the score may then leave [0, 1]).

    References
    ----------
    Arras, Osman, Samek. "CLEVR-XAI: A benchmark dataset for the ground truth
    evaluation of neural network explanations." Information Fusion 81, 2022.
    """

    name: ClassVar[str] = "localisation.relevance_mass"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = "Arras, Osman, Samek, CLEVR-XAI, Information Fusion 2022"
    bounds: ClassVar[tuple[float, float] | None] = None  # [0, 1] with positive_only=True

    def __init__(self, *, positive_only: bool = True) -> None:
        self.positive_only = positive_only

    def check_params(self) -> None:
        """Refuse a ``positive_only`` that is not a bool."""
        flag(self.name, "positive_only", self.positive_only)

    def _localise(self, pixels: Tensor, masks: Tensor) -> Tensor:
        a = pixels.flatten(1)
        if self.positive_only:
            a = a.clamp(min=0)
        inside = (a * masks.flatten(1)).sum(1, dtype=torch.float64)
        total = a.sum(1, dtype=torch.float64)
        safe = torch.where(total != 0, total, torch.ones_like(total))
        return torch.where(total != 0, inside / safe, torch.zeros_like(total))
