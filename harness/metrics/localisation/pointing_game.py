"""Pointing game (Zhang et al., 2018): does the attribution's maximum lie on the target."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from harness.metrics._params import integer
from harness.metrics.localisation._common import MaskMetric, dilate


class PointingGame(MaskMetric):
    """Hit (1) when the most relevant pixel lies in the target mask, else miss (0).

    Zhang et al. count a hit when the maximum lies within ``tolerance`` pixels
    of the annotated region (15 px on their 224-px images); the mask is dilated
    by a Euclidean disk of that radius. With several pixels tied at the maximum
    the score is the fraction of them that hit, i.e. the expected hit under a
    random tie-break; Quantus 0.6 (no tolerance) instead counts a hit if any
    tied maximum hits. With a unique maximum and ``tolerance=0`` both equal
    ``quantus.PointingGame(abs=False, normalise=False)``.

    Parameters
    ----------
    tolerance : int, default=0
        Radius in pixels by which the mask is grown before testing the maximum.

    References
    ----------
    Zhang, Bargal, Lin, Brandt, Shen, Sclaroff. "Top-Down Neural Attention by
    Excitation Backprop." International Journal of Computer Vision 126, 2018.
    """

    name: ClassVar[str] = "localisation.pointing_game"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = (
        "Zhang et al., Top-Down Neural Attention by Excitation Backprop, IJCV 2018"
    )

    def __init__(self, *, tolerance: int = 0) -> None:
        self.tolerance = tolerance

    def check_params(self) -> None:
        """Refuse a tolerance that is not an integer >= 0 (a radius in pixels)."""
        integer(self.name, "tolerance", self.tolerance, minimum=0)

    def _localise(self, pixels: Tensor, masks: Tensor) -> Tensor:
        grown = dilate(masks, self.tolerance).flatten(1)
        a = pixels.flatten(1)
        top = a == a.max(dim=1, keepdim=True).values
        return (top & grown).sum(1, dtype=torch.float64) / top.sum(1, dtype=torch.float64)
