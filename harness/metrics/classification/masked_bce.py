"""Masked binary cross-entropy over known multi-label entries (Chen, MIMIC-CXR)."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from harness.contracts.metric import ClassificationMetric
from harness.contracts.tags import MetricKind, MetricTags, Task
from harness.metrics.classification._common import check_shapes, require_known


class MaskedBCE(ClassificationMetric):
    """Mean binary cross-entropy over the known entries of a multi-label batch.

    Follows ``masked_bce_loss`` of the paper: ``F.binary_cross_entropy`` (whose
    log is clamped at -100) on sigmoid probabilities, summed over entries whose
    label is not -2 and divided by their number. Where the paper clamps a
    remaining -1 to 0, this metric ignores it instead (the dataset's uncertainty
    policy should have mapped every -1 before scoring; see ``_common``).

    References
    ----------
    Chen. "Interpretable Multimodal Deep Learning Model on MIMIC-CXR Dataset."
    Stanford CS231n report (paper 003 of this project).
    """

    name: ClassVar[str] = "classification.masked_bce"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = "Chen, Interpretable Multimodal Deep Learning Model on MIMIC-CXR"
    tags: ClassVar[MetricTags] = MetricTags(
        kind=MetricKind.CLASSIFICATION, tasks=frozenset({Task.MULTILABEL})
    )
    higher_is_better: ClassVar[bool] = False
    bounds: ClassVar[tuple[float, float] | None] = (0.0, 100.0)

    def _compute(self, labels: Tensor, probs: Tensor, task: Task) -> float:
        check_shapes(self.name, labels, probs, Task.MULTILABEL)
        known = require_known(self.name, labels)
        p = probs.double()[known]
        y = labels[known].double()
        return float(torch.nn.functional.binary_cross_entropy(p, y, reduction="mean"))
