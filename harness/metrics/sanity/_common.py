"""Batched similarity of attribution maps: Spearman rank correlation and SSIM (torch).

Both compare the rows of two stacks of maps and run on their device. The
second stack may carry extra leading dimensions (e.g. one stack of maps per
randomised layer, (L, N, H, W)); the first, (N, H, W), is broadcast against
it, so a reference is ranked or filtered once however many stacks it meets.
"""

from __future__ import annotations

import torch
from torch import Tensor

from harness.contracts.metric import Scores
from harness.errors import PluginError
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
    order = argsort_rows(x, stable=False).to(x.device)  # tie groups share their mean rank
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


def pearson_rows(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Pearson correlation along the last dimension (broadcast), and where it is defined.

    A row with zero variance in ``a`` or ``b`` has no correlation; it gets 0.
    """
    a = a - a.mean(-1, keepdim=True)
    b = b - b.mean(-1, keepdim=True)
    denominator = a.norm(dim=-1) * b.norm(dim=-1)
    defined = denominator > 0
    r = (a * b).sum(-1) / torch.where(defined, denominator, torch.ones_like(denominator))
    return torch.where(defined, r, torch.zeros_like(r)).clamp(-1.0, 1.0), defined


def spearman_rows(a: Tensor, b: Tensor, a_ranks: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Row-wise Spearman rank correlation (as ``scipy.stats.spearmanr``) of map stacks.

    ``a`` is (N, ...) and ``b`` is (..., N, ...) with the same trailing map
    shape, e.g. (N, H, W) and (L, N, H, W). ``a_ranks`` may pass the
    flattened ``rank_rows`` of ``a`` when ``a`` is compared many times. Pass
    maps as they are (e.g. float32, see :func:`rank_maps`) rather than
    :func:`prepare`-d: ranks ignore a positive scale, and float32 rows are
    ranked by the packed-key sort, several times faster than float64 ones.

    Returns
    -------
    tuple of Tensor
        float64 correlations of shape ``b.shape[:-(a.dim() - 1)]`` (0 where
        undefined: a constant map) and the bool mask of pairs where it is defined.
    """
    flat_b = b.reshape(*b.shape[: b.dim() - a.dim() + 1], -1)
    if a_ranks is not None:
        return pearson_rows(a_ranks, rank_rows(flat_b))
    flat_a = a.flatten(1).to(flat_b.dtype)
    ranks = rank_rows(torch.cat([flat_a, flat_b.reshape(-1, flat_a.shape[1])]))  # one sort
    return pearson_rows(ranks[: len(flat_a)], ranks[len(flat_a) :].reshape(flat_b.shape))


def box_mean(x: Tensor, win: int) -> Tensor:
    """Mean over every ``win`` x ``win`` window fully inside the last two dimensions.

    Separable window sums (each output adds 2 x ``win`` numbers, not
    ``win`` squared); equal to ``avg_pool2d(x, win, stride=1)`` up to rounding.
    """
    return x.unfold(-1, win, 1).sum(-1).unfold(-2, win, 1).sum(-1) / (win * win)


def ssim_rows(a: Tensor, b: Tensor, win_size: int = 7) -> Tensor:
    """Mean structural similarity of map pairs, as scikit-image computes it.

    ``a`` is (N, H, W); ``b`` is (N, H, W) or (..., N, H, W), compared pair by
    pair with ``a`` broadcast; returns float64 of shape ``b.shape[:-2]``.
    Matches ``skimage.metrics.structural_similarity(a, b, win_size=7,
    data_range=max(a, b) - min(a, b))``: uniform 7 x 7 windows, sample
    covariances, K1 = 0.01, K2 = 0.03, averaged over windows fully inside the
    image. The window shrinks (odd) for maps smaller than 7 px. A pair with
    zero data range (two equal constant maps) scores 1.
    """
    a, b = a.double(), b.double()
    h, w = a.shape[-2:]
    win = min(win_size, h, w)
    win = win if win % 2 == 1 else win - 1
    hi = torch.maximum(a.amax((-2, -1)), b.amax((-2, -1)))
    lo = torch.minimum(a.amin((-2, -1)), b.amin((-2, -1)))
    data_range = hi - lo
    c1 = ((0.01 * data_range) ** 2)[..., None, None]
    c2 = ((0.03 * data_range) ** 2)[..., None, None]
    ux, uxx = box_mean(torch.stack([a, a * a]), win).unbind(0)
    uy, uyy, uxy = box_mean(torch.stack([b, b * b, a * b]), win).unbind(0)
    cov_norm = win * win / (win * win - 1.0)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    numerator = (2 * ux * uy + c1) * (2 * vxy + c2)
    denominator = (ux * ux + uy * uy + c1) * (vx + vy + c2)
    s = (numerator / torch.where(denominator != 0, denominator, torch.ones_like(denominator))).mean(
        (-2, -1)
    )
    return torch.where(data_range > 0, s, torch.ones_like(s))


def rank_maps(pixels: Tensor, absolute: bool) -> Tensor:
    """Return the maps :func:`spearman_rows` should rank: absolute if asked, dtype kept.

    :func:`prepare` only divides each map by a positive peak, which keeps
    every order and tie (float64 holds each float32 ratio apart), so these
    maps have the same ranks as the prepared ones.
    """
    return pixels.abs() if absolute else pixels


def prepare(pixels: Tensor, absolute: bool) -> Tensor:
    """Return (..., H, W) maps as float64, optionally absolute, each scaled to max |a| = 1.

    The per-map scaling leaves Spearman unchanged and puts both maps of an
    SSIM pair on the same footing (Adebayo et al. normalise maps before SSIM).
    """
    x = pixels.double()
    x = x.abs() if absolute else x
    peak = (x if absolute else x.abs()).amax((-2, -1), keepdim=True)
    return x / torch.where(peak > 0, peak, torch.ones_like(peak))


def check_similarity(name: str, similarity: str) -> None:
    """Raise a PluginError unless ``similarity`` is "ssim" or "spearman"."""
    if similarity not in ("ssim", "spearman"):
        raise PluginError(
            f"{name}: similarity={similarity!r} - expected 'ssim' or 'spearman'.", plugin=name
        )


def compare_maps(reference: Tensor, maps: Tensor, similarity: str, absolute: bool) -> Scores:
    """Score each row's pair of (N, H, W) maps by ``similarity`` (both :func:`prepare`-d).

    "ssim": :func:`ssim_rows`; "spearman": :func:`spearman_rows`, with the
    fraction of undefined (constant-map) pairs in ``notes``.
    """
    maps = maps.to(reference.device)
    if similarity == "ssim":
        return Scores(values=ssim_rows(prepare(reference, absolute), prepare(maps, absolute)))
    rho, defined = spearman_rows(rank_maps(reference, absolute), rank_maps(maps, absolute))
    return Scores(
        values=rho, notes={"undefined_spearman_fraction": float((~defined).double().mean())}
    )
