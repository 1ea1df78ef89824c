"""Entropy complexity (Bhatt et al., 2020) of the fractional attribution magnitudes."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from harness.metrics.complexity._common import ComplexityMetric


class EntropyComplexity(ComplexityMetric):
    """Shannon entropy (nats) of ``p_i = |a_i| / sum_j |a_j|``; lower is simpler.

    ``0 log 0 = 0``. A map of zeros has no distribution; it scores ``log P``,
    the entropy of a uniform map (the most complex). Quantus 0.6
    (``Complexity``) computes the same with a 1e-12 inside the logarithm.
    The value lies in ``[0, log P]`` for P pixels, so compare at equal size.

    References
    ----------
    Bhatt, Weller, Moura. "Evaluating and Aggregating Feature-based Model
    Explanations." IJCAI 2020.
    """

    name: ClassVar[str] = "complexity.entropy"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = (
        "Bhatt, Weller, Moura, Evaluating and Aggregating Feature-based Model Explanations, "
        "IJCAI 2020"
    )
    higher_is_better: ClassVar[bool] = False
    bounds: ClassVar[tuple[float, float] | None] = None  # [0, log P] depends on the image size

    def _complexity(self, a: Tensor, valid: Tensor | None) -> Tensor:
        a = a.double()
        total = a.sum(1, keepdim=True)
        p = a / torch.where(total > 0, total, torch.ones_like(total))
        h = -torch.special.xlogy(p, p).sum(1)
        size = torch.full_like(h, a.shape[1]) if valid is None else valid.sum(1).to(h.dtype)
        return torch.where(total.squeeze(1) > 0, h, size.log())
