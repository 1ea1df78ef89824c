"""Top-k intersection (Theiner et al., 2022): share of the k most relevant pixels in the mask."""

from __future__ import annotations

import logging
from typing import ClassVar

import torch
from torch import Tensor

from harness.metrics._params import positive
from harness.metrics.localisation._common import MaskMetric, expected_topk_hits

log = logging.getLogger(__name__)


class TopKIntersection(MaskMetric):
    """Fraction of the ``k`` most relevant pixels that lie in the target mask.

    Signed values are ranked as given (Quantus's default ``abs=False``). Ties at
    the k-th value count by their expected share; with distinct values this
    equals ``quantus.TopKIntersection(k=k, abs=False, normalise=False)``. A
    ``k`` larger than the image is reduced to the number of pixels (logged).
    The maximum is ``min(1, |mask| / k)``, so compare explainers at equal k.

    Parameters
    ----------
    k : int, default=1000
        Number of top pixels (Quantus's default).

    References
    ----------
    Theiner, Müller-Budack, Ewerth. "Interpretable Semantic Photo Geolocation."
    WACV 2022.
    """

    name: ClassVar[str] = "localisation.top_k_intersection"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = (
        "Theiner, Mueller-Budack, Ewerth, Interpretable Semantic Photo Geolocation, WACV 2022"
    )

    def __init__(self, *, k: int = 1000) -> None:
        self.k = k

    def check_params(self) -> None:
        """Refuse a ``k`` that is not a positive integer (one above the pixels is reduced)."""
        positive(self.name, "k", self.k)

    def _localise(self, pixels: Tensor, masks: Tensor) -> Tensor:
        a = pixels.flatten(1)
        n, p = a.shape
        k = min(self.k, p)
        if k != self.k:
            log.info("metric %r: k=%s reduced to %d (pixels per image)", self.name, self.k, k)
        ks = torch.full((n,), k, dtype=torch.long, device=a.device)
        return expected_topk_hits(a, masks.flatten(1), ks) / k
