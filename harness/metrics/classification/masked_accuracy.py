"""Mean per-label accuracy over known multi-label entries (Chen, MIMIC-CXR)."""

from __future__ import annotations

import logging
from typing import ClassVar

import numpy as np
from torch import Tensor

from harness.contracts.metric import ClassificationMetric
from harness.contracts.tags import MetricKind, MetricTags, Task
from harness.metrics._params import number_in, positive
from harness.metrics.classification._common import check_shapes, per_label_columns

log = logging.getLogger(__name__)


class MaskedAccuracy(ClassificationMetric):
    """Mean over labels of the accuracy on that label's known rows.

    Follows ``masked_accuracy`` of the paper: a prediction is positive when
    ``prob > threshold``; each label is scored on its rows whose label is not
    -2, labels with fewer than ``min_known`` such rows are skipped, and the
    per-label accuracies are averaged (0.0 when no label qualifies, as in the
    paper; this case is logged). Where the paper counts a remaining -1 as a
    wrong prediction, this metric ignores it (see ``_common``).

    Parameters
    ----------
    threshold : float, default=0.5
        Decision threshold on sigmoid probabilities.
    min_known : int, default=2
        Labels with fewer known rows are skipped (the paper uses 2).

    References
    ----------
    Chen. "Interpretable Multimodal Deep Learning Model on MIMIC-CXR Dataset."
    Stanford CS231n report (paper 003 of this project).
    """

    name: ClassVar[str] = "classification.masked_accuracy"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = "Chen, Interpretable Multimodal Deep Learning Model on MIMIC-CXR"
    tags: ClassVar[MetricTags] = MetricTags(
        kind=MetricKind.CLASSIFICATION, tasks=frozenset({Task.MULTILABEL})
    )
    higher_is_better: ClassVar[bool] = True
    bounds: ClassVar[tuple[float, float] | None] = (0.0, 1.0)

    def __init__(self, *, threshold: float = 0.5, min_known: int = 2) -> None:
        self.threshold = threshold
        self.min_known = min_known

    def check_params(self) -> None:
        """Refuse a threshold outside [0, 1] and ``min_known < 1`` (a label needs a known row)."""
        number_in(self.name, "threshold", self.threshold, "[0, 1]", 0, 1)
        positive(self.name, "min_known", self.min_known)

    def _compute(self, labels: Tensor, probs: Tensor, task: Task) -> float:
        check_shapes(self.name, labels, probs, Task.MULTILABEL)
        pred = (probs > self.threshold).long()
        accs = [
            float((y == p).mean())
            for _, y, p in per_label_columns(self.name, labels, pred)
            if y.size >= self.min_known
        ]
        if not accs:
            log.warning(
                "metric %r: no label has %d known rows; returning 0.0", self.name, self.min_known
            )
            return 0.0
        return float(np.mean(accs))
