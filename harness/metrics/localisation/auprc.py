"""Area under the precision-recall curve of attributions against the mask (average precision)."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from harness.metrics._sorting import argsort_rows
from harness.metrics.localisation._common import MaskMetric


def average_precision(scores: Tensor, labels: Tensor) -> Tensor:
    """Batched average precision, as ``sklearn.metrics.average_precision_score``.

    ``AP = sum_n (R_n - R_{n-1}) P_n`` over the distinct score thresholds, from
    the highest down; tied scores form one threshold.

    Parameters
    ----------
    scores : Tensor
        (N, P) scores.
    labels : Tensor
        (N, P) bool labels; every row needs at least one positive.

    Returns
    -------
    Tensor
        (N,) float64 average precision.
    """
    index = argsort_rows(scores, descending=True)
    y = labels.gather(1, index).double()
    tp = y.cumsum(1)
    rank = torch.arange(1, y.shape[1] + 1, device=y.device, dtype=torch.float64)
    s = scores.gather(1, index)
    last = torch.ones_like(y, dtype=torch.bool)
    last[:, :-1] = s[:, 1:] != s[:, :-1]
    tp_at_ends = torch.where(last, tp, torch.zeros_like(tp)).cummax(dim=1).values
    previous = torch.nn.functional.pad(tp_at_ends[:, :-1], (1, 0))
    gain = torch.where(last, tp - previous, torch.zeros_like(tp))
    return (gain * tp / rank).sum(1) / tp[:, -1]


class AUPRC(MaskMetric):
    """Average precision of the attribution as a per-pixel detector of the mask.

    Pixels are ranked by their signed attribution; each distinct value is a
    threshold; the score is the step-wise area under the precision-recall curve
    (scikit-learn's ``average_precision_score``, batched in torch). A random map
    scores about the mask's share of the image; the mask itself scores 1.
    Quantus 0.6 has no AUPRC: its ``AUC`` is the ROC AUC of the same ranking.

    References
    ----------
    Davis, Goadrich. "The Relationship Between Precision-Recall and ROC Curves."
    ICML 2006. Pedregosa et al. "Scikit-learn." JMLR 12, 2011.
    """

    name: ClassVar[str] = "localisation.auprc"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = "Davis & Goadrich, ICML 2006; scikit-learn average_precision_score"

    def _localise(self, pixels: Tensor, masks: Tensor) -> Tensor:
        return average_precision(pixels.flatten(1), masks.flatten(1))
