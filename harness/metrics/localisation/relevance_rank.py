"""Relevance rank accuracy (Arras et al., 2022): top-|mask| pixels inside the mask."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from harness.metrics._params import flag
from harness.metrics.localisation._common import MaskMetric, expected_topk_hits


class RelevanceRankAccuracy(MaskMetric):
    """Fraction of the K most relevant pixels that lie in the mask, K = mask size.

    As in Arras et al., only positive relevance counts (negative values are set
    to 0 before ranking). Pixels tied at the K-th value count by their expected
    share, so the score does not depend on pixel order; with distinct values it
    equals ``quantus.RelevanceRankAccuracy(abs=False, normalise=False)``, whose
    ``np.argsort`` order is implementation-defined among ties.

    Parameters
    ----------
    positive_only : bool, default=True
        Clip negative relevance to 0 before ranking (the paper's choice).

    References
    ----------
    Arras, Osman, Samek. "CLEVR-XAI: A benchmark dataset for the ground truth
    evaluation of neural network explanations." Information Fusion 81, 2022.
    """

    name: ClassVar[str] = "localisation.relevance_rank"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = "Arras, Osman, Samek, CLEVR-XAI, Information Fusion 2022"

    def __init__(self, *, positive_only: bool = True) -> None:
        self.positive_only = positive_only

    def check_params(self) -> None:
        """Refuse a ``positive_only`` that is not a bool."""
        flag(self.name, "positive_only", self.positive_only)

    def _localise(self, pixels: Tensor, masks: Tensor) -> Tensor:
        a = pixels.flatten(1)
        if self.positive_only:
            a = a.clamp(min=0)
        m = masks.flatten(1)
        k = m.sum(1)
        return expected_topk_hits(a, m, k) / k.double()
