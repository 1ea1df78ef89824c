"""Attribution localisation (Kohlbrenner et al., 2020): positive relevance inside the mask."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from harness.metrics.localisation._common import MaskMetric


class AttributionLocalisation(MaskMetric):
    """``mu = R_in+ / R_tot+``: positive relevance in the mask over all positive relevance.

    Kohlbrenner et al. define it on bounding boxes; here the box is the
    ground-truth mask. Only positive relevance counts, as in the paper. Quantus
    0.6 defaults to ``abs=True`` (magnitudes, so negative evidence counts as
    inside relevance); this follows the paper and equals
    ``quantus.AttributionLocalisation(abs=False, positive_attributions=True,
    normalise=False)`` up to Quantus's 1e-9 added to the denominator. A map
    without positive relevance scores 0.

    References
    ----------
    Kohlbrenner, Bauer, Nakajima, Binder, Samek, Lapuschkin. "Towards Best
    Practice in Explaining Neural Network Decisions with LRP." IJCNN 2020.
    """

    name: ClassVar[str] = "localisation.attribution_localisation"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = (
        "Kohlbrenner et al., Towards Best Practice in Explaining Neural Network Decisions "
        "with LRP, IJCNN 2020"
    )

    def _localise(self, pixels: Tensor, masks: Tensor) -> Tensor:
        a = pixels.flatten(1).clamp(min=0)
        inside = (a * masks.flatten(1)).sum(1, dtype=torch.float64)
        total = a.sum(1, dtype=torch.float64)
        safe = torch.where(total > 0, total, torch.ones_like(total))
        return torch.where(total > 0, inside / safe, torch.zeros_like(total))
