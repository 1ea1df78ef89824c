"""Area under the ROC curve, per label or averaged (scikit-learn ``roc_auc_score``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from harness.contracts.metric import ClassificationMetric
from harness.contracts.tags import MetricKind, MetricTags, Task
from harness.errors import DataError
from harness.metrics._params import integer
from harness.metrics.classification._common import as_numpy, check_shapes, per_label_columns

log = logging.getLogger(__name__)


class AUROC(ClassificationMetric):
    """ROC AUC: one label's, or the mean over labels whose AUC is defined.

    Multi-class: one-vs-rest per class (``labels == k`` against ``probs[:, k]``);
    for two classes only class 1 is scored (class 0's AUC is the same number).
    With every class present this equals ``roc_auc_score(..., multi_class="ovr",
    average="macro")``. Multi-label: each label on its known rows (0/1; -2 and
    any remaining -1 ignored). A label's AUC is defined only when its known
    rows hold both classes; ``label=None`` averages over exactly those labels,
    and its bootstrap interval over the same labels (:meth:`resample_statistic`;
    version 2: version 1's resamples averaged whichever labels stayed defined).

    Parameters
    ----------
    label : int or None, default=None
        Score only this class / label index; None averages over the classes (multi-class)
        or over the labels with both classes among their known rows (multi-label).

    References
    ----------
    Hanley, McNeil. "The meaning and use of the area under a receiver operating
    characteristic (ROC) curve." Radiology 143(1), 1982.
    """

    name: ClassVar[str] = "classification.auroc"
    version: ClassVar[str] = "2"
    citation: ClassVar[str] = "Hanley & McNeil, Radiology 1982; scikit-learn roc_auc_score"
    tags: ClassVar[MetricTags] = MetricTags(kind=MetricKind.CLASSIFICATION)
    higher_is_better: ClassVar[bool] = True
    bounds: ClassVar[tuple[float, float] | None] = (0.0, 1.0)

    def __init__(self, *, label: int | None = None) -> None:
        self.label = label

    def check_params(self) -> None:
        """Refuse a label that is neither None nor an integer >= 0 (its upper bound needs K)."""
        if self.label is not None:
            integer(self.name, "label", self.label, minimum=0)

    def per_label(self, labels: Tensor, probs: Tensor, task: Task) -> dict[int, float]:
        """Return {label index: AUC} for every label whose AUC is defined."""
        from sklearn.metrics import roc_auc_score

        check_shapes(self.name, labels, probs, task)
        k = probs.shape[1]
        if task is Task.MULTICLASS:
            y = as_numpy(labels)
            p = as_numpy(probs)
            classes = [1] if k == 2 else list(range(k))
            columns = [(j, (y == j).astype(np.int64), p[:, j]) for j in classes]
        else:
            columns = per_label_columns(self.name, labels, probs.double())
        out = {}
        for j, y_j, p_j in columns:
            if y_j.size and 0 < int(y_j.sum()) < y_j.size:
                out[j] = float(roc_auc_score(y_j, p_j))
        return out

    def _compute(self, labels: Tensor, probs: Tensor, task: Task) -> float:
        k = probs.shape[1]
        if self.label is not None and not 0 <= self.label < k:
            raise DataError(
                f"metric {self.name!r}: label={self.label} - expected an index in 0..{k - 1}."
            )
        scores = self.per_label(labels, probs, task)
        if self.label is not None:
            wanted = 1 if (task is Task.MULTICLASS and k == 2 and self.label == 0) else self.label
            if wanted not in scores:
                raise DataError(
                    f"metric {self.name!r}: AUC of label {self.label} is undefined - expected "
                    "both positive and negative known rows."
                )
            return scores[wanted]
        if not scores:
            raise DataError(
                f"metric {self.name!r}: no label has both positive and negative known rows - "
                "expected at least one to compute a ROC AUC."
            )
        return float(np.mean(list(scores.values())))

    def resample_statistic(
        self, labels: Tensor, probs: Tensor, task: Task
    ) -> Callable[[np.ndarray], float]:
        """Return the bootstrap statistic: the mean over the labels defined on the whole split.

        A resample in which one of those labels has a single class among its known
        rows is undefined (dropped by the bootstrap) instead of averaging fewer
        labels than the reported value. Labels left out of the mean are logged once.
        """
        if self.label is not None:
            return super().resample_statistic(labels, probs, task)
        labels, probs = labels.detach().cpu(), probs.detach().cpu()  # as compute gives _compute
        kept = sorted(self.per_label(labels, probs, task))
        k = probs.shape[1]
        scored = [1] if task is Task.MULTICLASS and k == 2 else list(range(k))
        left_out = [j for j in scored if j not in kept]
        if kept and left_out:
            log.warning(
                "metric %r: label(s) %s have a single class among their known rows of this "
                "split; the mean AUROC is over label(s) %s",
                self.name, left_out, kept,
            )  # fmt: skip

        def statistic(rows: np.ndarray) -> float:
            index = torch.as_tensor(rows)
            scores = self.per_label(labels[index], probs[index], task)
            undefined = [j for j in kept if j not in scores]
            if undefined or not kept:
                raise DataError(f"metric {self.name!r}: label(s) {undefined} undefined here")
            return float(np.mean([scores[j] for j in kept]))

        return statistic
