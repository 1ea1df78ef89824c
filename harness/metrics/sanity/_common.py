"""Batched similarity of attribution maps: Spearman rank correlation and SSIM (torch).

Both return one value per row of two (N, H, W) stacks and run on their device.
"""

from __future__ import annotations

import torch
from torch import Tensor

from harness.metrics.localisation._common import argsort_rows


def rank_rows(x: Tensor) -> Tensor:
    """Return 1-based average ranks of each row of (N, P), ties sharing their mean rank.

    The same ranks as ``scipy.stats.rankdata(method="average")`` row by row.
    """
    n, p = x.shape
    order = argsort_rows(x).to(x.device)
    s = x.gather(1, order)
    pos = torch.arange(p, device=x.device).expand(n, p)
    first = torch.ones_like(s, dtype=torch.bool)
    first[:, 1:] = s[:, 1:] != s[:, :-1]
    last = torch.ones_like(s, dtype=torch.bool)
    last[:, :-1] = first[:, 1:]
    start = torch.where(first, pos, torch.zeros_like(pos)).cummax(dim=1).values
    end_rev = torch.where(last, pos, torch.full_like(pos, p)).flip(1).cummin(dim=1).values
    end = end_rev.flip(1)
    ranks_sorted = (start + end).double() / 2 + 1
    return torch.empty_like(ranks_sorted).scatter_(1, order, ranks_sorted)


def pearson_rows(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Row-wise Pearson correlation of (N, P) tensors, and a mask of rows where it is defined.

    A row with zero variance in ``a`` or ``b`` has no correlation; it gets 0.
    """
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    denominator = a.norm(dim=1) * b.norm(dim=1)
    defined = denominator > 0
    r = (a * b).sum(1) / torch.where(defined, denominator, torch.ones_like(denominator))
    return torch.where(defined, r, torch.zeros_like(r)).clamp(-1.0, 1.0), defined


def spearman_rows(a: Tensor, b: Tensor, a_ranks: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Row-wise Spearman rank correlation of two (N, ...) stacks (as ``scipy.stats.spearmanr``).

    ``a_ranks`` may pass ``rank_rows`` of ``a`` (flattened) when ``a`` is compared many times.

    Returns
    -------
    tuple of Tensor
        (N,) float64 correlations (0 where undefined: a constant map) and the
        (N,) bool mask of rows where it is defined.
    """
    ra = rank_rows(a.flatten(1).double()) if a_ranks is None else a_ranks
    return pearson_rows(ra, rank_rows(b.flatten(1).double()))


def ssim_rows(a: Tensor, b: Tensor, win_size: int = 7) -> Tensor:
    """Mean structural similarity of (N, H, W) map pairs, as scikit-image computes it.

    Matches ``skimage.metrics.structural_similarity(a, b, win_size=7,
    data_range=max(a, b) - min(a, b))``: uniform 7 x 7 windows, sample
    covariances, K1 = 0.01, K2 = 0.03, averaged over windows fully inside the
    image. The window shrinks (odd) for maps smaller than 7 px. A pair with
    zero data range (two equal constant maps) scores 1.
    """
    a = a.double().unsqueeze(1)
    b = b.double().unsqueeze(1)
    h, w = a.shape[-2:]
    win = min(win_size, h, w)
    win = win if win % 2 == 1 else win - 1
    both = torch.cat([a, b], dim=1).flatten(1)
    data_range = both.amax(1) - both.amin(1)
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    c1, c2 = c1.view(-1, 1, 1, 1), c2.view(-1, 1, 1, 1)
    stack = torch.cat([a, b, a * a, b * b, a * b], dim=1)
    means = torch.nn.functional.avg_pool2d(stack, win, stride=1)
    ux, uy, uxx, uyy, uxy = means.unbind(1)
    ux, uy, uxx, uyy, uxy = (t.unsqueeze(1) for t in (ux, uy, uxx, uyy, uxy))
    cov_norm = win * win / (win * win - 1.0)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    numerator = (2 * ux * uy + c1) * (2 * vxy + c2)
    denominator = (ux * ux + uy * uy + c1) * (vx + vy + c2)
    s = (numerator / torch.where(denominator != 0, denominator, torch.ones_like(denominator))).mean(
        (1, 2, 3)
    )
    return torch.where(data_range > 0, s, torch.ones_like(s))


def prepare(pixels: Tensor, absolute: bool) -> Tensor:
    """Return (N, H, W) maps as float64, optionally absolute, each scaled to max |a| = 1.

    The per-row scaling leaves Spearman unchanged and puts both maps of an
    SSIM pair on the same footing (Adebayo et al. normalise maps before SSIM).
    """
    x = pixels.double()
    if absolute:
        x = x.abs()
    peak = x.abs().flatten(1).amax(1).view(-1, 1, 1)
    return x / torch.where(peak > 0, peak, torch.ones_like(peak))
