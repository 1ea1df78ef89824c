"""Keep huge (still finite) float32 attribution maps from overflowing inside sums."""

from __future__ import annotations

import torch
from torch import Tensor

_HUGE = 2.0**64  # rows above this get rescaled; sums of a few million such values stay finite


def tame_rows(values: Tensor) -> Tensor:
    """Return ``values`` (N, ...) with each row whose largest magnitude exceeds 2**64 scaled below 1.

    The scale is a power of two, which changes no bit of a normal float, so a
    computation invariant to positive scaling (ranks, Pearson correlation,
    min-max normalisation) gives what the row would give if its sums could
    not overflow (a map near float32's maximum, 3.4e38, made patch sums,
    subset sums and min-max spans infinite). Other rows are returned as they are.
    """
    peak = values.detach().abs().reshape(len(values), -1).amax(dim=1)
    huge = peak > _HUGE
    if not bool(huge.any()):
        return values
    exponent = torch.frexp(peak).exponent  # peak = mantissa * 2**exponent, mantissa in [0.5, 1)
    scale = torch.where(huge, torch.ldexp(torch.ones_like(peak), -exponent), 1.0)
    return values * scale.view(-1, *([1] * (values.dim() - 1)))
