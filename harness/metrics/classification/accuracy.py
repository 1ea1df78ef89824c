"""Accuracy (scikit-learn ``accuracy_score``)."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from harness.contracts.metric import ClassificationMetric
from harness.contracts.tags import MetricKind, MetricTags, Task
from harness.metrics._params import number_in
from harness.metrics.classification._common import (
    as_numpy,
    check_shapes,
    hard_predictions,
    require_known,
)


class Accuracy(ClassificationMetric):
    """Fraction of correct predictions.

    Multi-class: ``sklearn.metrics.accuracy_score`` of the argmax class.
    Multi-label: the fraction of correct label decisions (``prob > threshold``)
    over all known entries (labels 0 or 1; -2 and any remaining -1 are
    ignored), i.e. micro-averaged element accuracy. Subset accuracy is not used
    because it is undefined when some labels are missing.

    Parameters
    ----------
    threshold : float, default=0.5
        Decision threshold on sigmoid probabilities (multi-label only).

    References
    ----------
    Pedregosa et al. "Scikit-learn: Machine Learning in Python." JMLR 12, 2011.
    """

    name: ClassVar[str] = "classification.accuracy"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = (
        "Pedregosa et al., Scikit-learn: Machine Learning in Python, JMLR 2011"
    )
    tags: ClassVar[MetricTags] = MetricTags(kind=MetricKind.CLASSIFICATION)
    higher_is_better: ClassVar[bool] = True
    bounds: ClassVar[tuple[float, float] | None] = (0.0, 1.0)

    def __init__(self, *, threshold: float = 0.5) -> None:
        self.threshold = threshold

    def check_params(self) -> None:
        """Refuse a threshold outside [0, 1] (it is compared with probabilities)."""
        number_in(self.name, "threshold", self.threshold, "[0, 1]", 0, 1)

    def _compute(self, labels: Tensor, probs: Tensor, task: Task) -> float:
        from sklearn.metrics import accuracy_score

        check_shapes(self.name, labels, probs, task)
        pred = hard_predictions(probs, task, self.threshold)
        if task is Task.MULTILABEL:
            known = require_known(self.name, labels)
            return float(accuracy_score(as_numpy(labels[known]), as_numpy(pred[known])))
        return float(accuracy_score(as_numpy(labels), as_numpy(pred)))
