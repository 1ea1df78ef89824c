"""Row-wise correlations for the metrics: Pearson, Spearman, and run-to-run agreement (torch).

Shared by the sanity checks (map against map), faithfulness correlation
(attribution sums against output drops) and the stochastic metrics' run
agreement (scores of one half of the draws against the other, across rows).
Everything is batched over rows and runs on the inputs' device.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from harness.metrics._sorting import argsort_rows


def rank_rows(x: Tensor) -> Tensor:
    """Return 1-based average ranks along the last dimension, ties sharing their mean rank.

    The same ranks as ``scipy.stats.rankdata(method="average")`` row by row;
    leading dimensions are batch dimensions. Returns float64. Stacks without
    ties (the usual case for real-valued maps) skip the tie bookkeeping.
    """
    shape = x.shape
    x = x.reshape(-1, shape[-1])
    n, p = x.shape
    order = argsort_rows(x, stable=False)  # tie groups share their mean rank
    s = x.gather(1, order)
    pos = torch.arange(p, device=x.device).expand(n, p)
    first = torch.ones_like(s, dtype=torch.bool)
    first[:, 1:] = s[:, 1:] != s[:, :-1]
    if bool(first.all()):
        ranks_sorted = (pos + 1).double()
    else:
        last = torch.ones_like(s, dtype=torch.bool)
        last[:, :-1] = first[:, 1:]
        start = torch.where(first, pos, torch.zeros_like(pos)).cummax(dim=1).values
        end_rev = torch.where(last, pos, torch.full_like(pos, p)).flip(1).cummin(dim=1).values
        ranks_sorted = (start + end_rev.flip(1)).double() / 2 + 1
    return torch.empty_like(ranks_sorted).scatter_(1, order, ranks_sorted).reshape(shape)


def pearson_rows(a: Tensor, b: Tensor, valid: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Pearson correlation along the last dimension (broadcast), and where it is defined.

    ``valid`` (broadcast like ``a``) keeps only those positions of each row. A
    row with zero variance in ``a`` or ``b`` has no correlation; it gets 0.
    """
    if valid is None:
        a = a - a.mean(-1, keepdim=True)
        b = b - b.mean(-1, keepdim=True)
    else:
        w = valid.to(a.dtype)
        count = w.sum(-1, keepdim=True).clamp(min=1)
        a = (a - (a * w).sum(-1, keepdim=True) / count) * w
        b = (b - (b * w).sum(-1, keepdim=True) / count) * w
    denominator = a.norm(dim=-1) * b.norm(dim=-1)
    defined = denominator > 0
    r = (a * b).sum(-1) / torch.where(defined, denominator, torch.ones_like(denominator))
    return torch.where(defined, r, torch.zeros_like(r)).clamp(-1.0, 1.0), defined


def spearman_rows(
    a: Tensor, b: Tensor, a_ranks: Tensor | None = None, valid: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Row-wise Spearman rank correlation (as ``scipy.stats.spearmanr``) of map stacks.

    ``a`` is (N, ...) and ``b`` is (..., N, ...) with the same trailing map
    shape, e.g. (N, H, W) and (L, N, H, W). ``a_ranks`` may pass the
    flattened ``rank_rows`` of ``a`` when ``a`` is compared many times. Pass
    maps as they are (e.g. float32, see
    :func:`harness.metrics.sanity._common.rank_maps`) rather than scaled: ranks ignore a positive scale, and float32 rows are
    ranked by the packed-key sort, several times faster than float64 ones.
    ``valid`` (N, ...) bool, like ``a``, compares only those positions of each
    row (e.g. a document's tokens, not its padding): the others rank above
    every valid value and take no part in the correlation (not with ``a_ranks``).

    Returns
    -------
    tuple of Tensor
        float64 correlations of shape ``b.shape[:-(a.dim() - 1)]`` and the bool
        mask of pairs where the correlation is defined. Where it is not (a
        constant map), two constant maps score 1 (their orders are the same:
        nothing changed, as SSIM scores two equal constant maps) and a constant
        map against a varying one scores 0 (no association).
    """
    flat_b = b.reshape(*b.shape[: b.dim() - a.dim() + 1], -1)
    keep = None if valid is None else valid.reshape(len(valid), -1)
    if keep is not None:
        flat_b = flat_b.masked_fill(~keep, math.inf)
    if a_ranks is not None:
        ranks_a, ranks_b = a_ranks, rank_rows(flat_b)
    else:
        flat_a = a.flatten(1).to(flat_b.dtype)
        if keep is not None:
            flat_a = flat_a.masked_fill(~keep, math.inf)
        ranks = rank_rows(torch.cat([flat_a, flat_b.reshape(-1, flat_a.shape[1])]))  # one sort
        ranks_a, ranks_b = ranks[: len(flat_a)], ranks[len(flat_a) :].reshape(flat_b.shape)
    rho, defined = pearson_rows(ranks_a, ranks_b, keep)
    both_constant = _constant(ranks_a, keep) & _constant(ranks_b, keep)
    return torch.where(both_constant, torch.ones_like(rho), rho), defined


def _constant(ranks: Tensor, valid: Tensor | None = None) -> Tensor:
    """Return whether each row of ranks is constant (every value tied) on its valid positions."""
    if valid is None:
        return ranks.amax(-1) == ranks.amin(-1)
    high = ranks.masked_fill(~valid, -math.inf).amax(-1)
    low = ranks.masked_fill(~valid, math.inf).amin(-1)
    return high <= low


def rank_agreement(first: Tensor, second: Tensor) -> float | None:
    """Spearman correlation across rows of two (N,) score vectors; None if one is constant.

    The ``notes["run_agreement"]`` of a stochastic metric: its per-row scores
    from one half of the random draws against those from the other half.
    """
    rho, defined = spearman_rows(first[None], second[None])
    return float(rho[0]) if bool(defined.all()) else None
