"""Sparseness (Chalasani et al., 2020): the Gini index of the attribution magnitudes."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor

from harness.contracts.metric import ExplanationMetric
from harness.contracts.tags import MetricTags
from harness.metrics._sorting import sort_rows
from harness.metrics.complexity._common import COMPLEXITY_TAGS, magnitudes

if TYPE_CHECKING:
    from harness.contracts.data import Attribution, Batch
    from harness.contracts.explainer import Explainer
    from harness.contracts.model import Model


def gini(values: Tensor) -> Tensor:
    """Row-wise Gini index of (N, P) non-negative values; an all-zero row gives 0.

    ``G = sum_k (2k - P - 1) v_(k) / (P sum_k v_k)`` with ``v_(k)`` sorted
    ascending, k = 1..P: 0 for a uniform row, ``1 - 1/P`` for a single spike.
    """
    p = values.shape[1]
    ordered = sort_rows(values)
    k = torch.arange(1, p + 1, device=values.device, dtype=values.dtype)
    total = ordered.sum(1)
    numerator = ((2 * k - p - 1) * ordered).sum(1)
    safe = torch.where(total > 0, total, torch.ones_like(total))
    return torch.where(total > 0, numerator / (p * safe), torch.zeros_like(total))


class Sparseness(ExplanationMetric):
    """Gini index of ``|attribution|`` per row; higher means sparser (simpler).

    Quantus 0.6 adds 1e-7 to every value before the index (and by default
    divides by the batch maximum, which the index ignores); otherwise it
    computes the same quantity. A map of zeros scores 0.

    References
    ----------
    Chalasani, Chen, Chowdhury, Wu, Jha. "Concise Explanations of Neural
    Networks using Adversarial Training." ICML 2020.
    """

    name: ClassVar[str] = "complexity.sparseness"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = (
        "Chalasani et al., Concise Explanations of Neural Networks using Adversarial Training, "
        "ICML 2020"
    )
    tags: ClassVar[MetricTags] = COMPLEXITY_TAGS
    higher_is_better: ClassVar[bool] = True
    bounds: ClassVar[tuple[float, float] | None] = (0.0, 1.0)

    def _score(
        self,
        model: Model,
        batch: Batch,
        targets: Tensor,
        attribution: Attribution,
        explainer: Explainer | None,
    ) -> Tensor:
        return gini(magnitudes(self.name, attribution))
