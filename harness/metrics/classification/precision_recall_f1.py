"""Weighted and macro precision, recall and F1 (scikit-learn)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from torch import Tensor

from harness.contracts.metric import ClassificationMetric
from harness.contracts.tags import MetricKind, MetricTags, Task
from harness.metrics._params import number_in
from harness.metrics.classification._common import (
    as_numpy,
    check_shapes,
    hard_predictions,
    per_label_columns,
    require_known,
)

_SKLEARN = "Pedregosa et al., Scikit-learn: Machine Learning in Python, JMLR 2011"
_INDEX = {"precision": 0, "recall": 1, "f1": 2}


class _PRF(ClassificationMetric):
    """Shared computation; subclasses fix ``_which`` and ``_average``.

    Multi-class: ``sklearn.metrics.precision_recall_fscore_support`` over the
    argmax class with ``average`` and ``zero_division=0`` (a class never
    predicted, or never present, contributes 0 instead of a warning and NaN);
    classes are those present in the labels or the predictions (sklearn's default).
    Multi-label: each label is scored on its known rows only (0/1; -2 and any
    remaining -1 are ignored) with the decision ``prob > threshold``; the per-label
    scores are then averaged: ``weighted`` by the number of positive known rows
    (sklearn's support), ``macro`` uniformly.
    """

    tags: ClassVar[MetricTags] = MetricTags(kind=MetricKind.CLASSIFICATION)
    higher_is_better: ClassVar[bool] = True
    bounds: ClassVar[tuple[float, float] | None] = (0.0, 1.0)
    citation: ClassVar[str] = _SKLEARN
    zero_division: ClassVar[float] = 0.0
    _which: ClassVar[str] = "f1"
    _average: ClassVar[str] = "weighted"

    def __init__(self, *, threshold: float = 0.5) -> None:
        self.threshold = threshold

    def check_params(self) -> None:
        """Refuse a threshold outside [0, 1] (it is compared with probabilities)."""
        number_in(self.name, "threshold", self.threshold, "[0, 1]", 0, 1)

    def _compute(self, labels: Tensor, probs: Tensor, task: Task) -> float:
        from sklearn.metrics import precision_recall_fscore_support

        check_shapes(self.name, labels, probs, task)
        pred = hard_predictions(probs, task, self.threshold)
        index = _INDEX[self._which]
        if task is Task.MULTICLASS:
            out = precision_recall_fscore_support(
                as_numpy(labels),
                as_numpy(pred),
                average=self._average,
                zero_division=self.zero_division,
            )
            return float(out[index])
        require_known(self.name, labels)
        scores, supports = [], []
        for _, y, p in per_label_columns(self.name, labels, pred):
            if y.size == 0:
                continue
            out = precision_recall_fscore_support(
                y, p, labels=[1], average="binary", zero_division=self.zero_division
            )
            scores.append(float(out[index]))
            supports.append(float((y == 1).sum()))
        if self._average == "macro":
            return float(np.mean(scores))
        total = float(np.sum(supports))
        return float(np.dot(scores, supports) / total) if total > 0 else 0.0


class PrecisionWeighted(_PRF):
    """Support-weighted precision; ``zero_division=0``; see the module notes.

    Parameters
    ----------
    threshold : float, default=0.5
        Decision threshold on sigmoid probabilities (multi-label only).

    References
    ----------
    Pedregosa et al. "Scikit-learn: Machine Learning in Python." JMLR 12, 2011.
    """

    name: ClassVar[str] = "classification.precision_weighted"
    version: ClassVar[str] = "1"
    _which: ClassVar[str] = "precision"
    _average: ClassVar[str] = "weighted"


class RecallWeighted(_PRF):
    """Support-weighted recall; ``zero_division=0``; see the module notes.

    Parameters
    ----------
    threshold : float, default=0.5
        Decision threshold on sigmoid probabilities (multi-label only).

    References
    ----------
    Pedregosa et al. "Scikit-learn: Machine Learning in Python." JMLR 12, 2011.
    """

    name: ClassVar[str] = "classification.recall_weighted"
    version: ClassVar[str] = "1"
    _which: ClassVar[str] = "recall"
    _average: ClassVar[str] = "weighted"


class F1Weighted(_PRF):
    """Support-weighted F1; ``zero_division=0``; see the module notes.

    Parameters
    ----------
    threshold : float, default=0.5
        Decision threshold on sigmoid probabilities (multi-label only).

    References
    ----------
    Pedregosa et al. "Scikit-learn: Machine Learning in Python." JMLR 12, 2011.
    """

    name: ClassVar[str] = "classification.f1_weighted"
    version: ClassVar[str] = "1"
    _which: ClassVar[str] = "f1"
    _average: ClassVar[str] = "weighted"


class F1Macro(_PRF):
    """Unweighted mean of per-class (per-label) F1; ``zero_division=0``.

    Parameters
    ----------
    threshold : float, default=0.5
        Decision threshold on sigmoid probabilities (multi-label only).

    References
    ----------
    Pedregosa et al. "Scikit-learn: Machine Learning in Python." JMLR 12, 2011.
    """

    name: ClassVar[str] = "classification.f1_macro"
    version: ClassVar[str] = "1"
    _which: ClassVar[str] = "f1"
    _average: ClassVar[str] = "macro"
