"""Sparseness (Chalasani et al., 2020): the Gini index of the attribution magnitudes."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from harness.metrics._sorting import sort_rows
from harness.metrics.complexity._common import ComplexityMetric


def gini(values: Tensor, valid: Tensor | None = None) -> Tensor:
    """Row-wise Gini index (float64) of (N, P) non-negative values; an all-zero row gives 0.

    ``G = sum_k (2k - n - 1) v_(k) / (n sum_k v_k)`` with ``v_(k)`` sorted
    ascending, k = 1..n: 0 for a uniform row, ``1 - 1/n`` for a single spike.
    ``n`` is P, or each row's count of ``valid`` values (the others are left out).
    """
    n: float | Tensor
    if valid is None:
        ordered = sort_rows(values)
        n = float(values.shape[1])
    else:  # left-out values sort last and then count as zero
        ordered = sort_rows(values.masked_fill(~valid, math.inf))
        ordered = ordered.masked_fill(ordered == math.inf, 0.0)
        n = valid.sum(1).double()
    sums = _rank_sums(ordered)
    total = sums[:, 1] * n
    # an all-zero row gives 0 / 0 (NaN: the values are finite, so only there) -> 0
    return sums[:, 0].sub_(total).div_(total).nan_to_num_(0.0)


def _rank_sums(ordered: Tensor) -> Tensor:
    """Return (N, 2) float64 ``[sum_k (2k - 1) v_(k), sum_k v_(k)]`` of sorted rows.

    One matrix product; in NumPy on the CPU, where torch would spend two
    threads on these sizes and leave one spinning into the next metric's sort.
    """
    k = np.arange(1, ordered.shape[1] + 1, dtype=np.float64)
    weights = np.stack([2 * k - 1, np.ones_like(k)], axis=1)
    if ordered.device.type == "cpu":
        return torch.from_numpy(ordered.numpy().astype(np.float64, copy=False) @ weights)
    return ordered.double() @ torch.from_numpy(weights).to(ordered.device)


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
