"""Sparseness (Chalasani et al., 2020): the Gini index of the attribution magnitudes."""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor

from harness.metrics._sorting import sort_rows
from harness.metrics.complexity._common import ComplexityMetric


def gini(values: Tensor, valid: Tensor | None = None) -> Tensor:
    """Row-wise Gini index of (N, P) non-negative values; an all-zero row gives 0.

    ``G = sum_k (2k - n - 1) v_(k) / (n sum_k v_k)`` with ``v_(k)`` sorted
    ascending, k = 1..n: 0 for a uniform row, ``1 - 1/n`` for a single spike.
    ``n`` is P, or each row's count of ``valid`` values (the others are left out).
    """
    p = values.shape[1]
    if valid is None:
        ordered = sort_rows(values)
        n = torch.full((len(values),), p, device=values.device, dtype=values.dtype)
    else:  # left-out values sort last and then count as zero
        ordered = sort_rows(values.masked_fill(~valid, math.inf))
        ordered = ordered.masked_fill(ordered == math.inf, 0.0)
        n = valid.sum(1).to(values.dtype)
    k = torch.arange(1, p + 1, device=values.device, dtype=values.dtype)
    total = ordered.sum(1)
    numerator = ((2 * k - n.view(-1, 1) - 1) * ordered).sum(1)
    safe = torch.where(total > 0, total, torch.ones_like(total))
    return torch.where(total > 0, numerator / (n * safe), torch.zeros_like(total))


class Sparseness(ComplexityMetric):
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
    higher_is_better: ClassVar[bool] = True
    bounds: ClassVar[tuple[float, float] | None] = (0.0, 1.0)

    def _complexity(self, a: Tensor, valid: Tensor | None) -> Tensor:
        return gini(a, valid)
