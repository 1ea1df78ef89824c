"""Batched geometric multigrid for ROAD's masked 8-neighbour system (private).

The fine operator is ``A v = U (D v - N v)`` on a full H x W grid, where
``N`` is the 8-neighbour stencil ``[[1, 2, 1], [2, 0, 2], [1, 2, 1]] / 12``
(zero outside the image), ``D`` its row sums and ``U`` the 0/1 mask of
unknown pixels; vectors vanish on known pixels, so ``A`` is the system of
:mod:`harness.metrics.faithfulness._imputation` embedded in the grid.

Coarse grids are vertex-centred (fine node ``2i`` is coarse node ``i``, one
ghost node past an even edge) and their operators are Galerkin products
``P^T A P`` with bilinear prolongation ``P``: a known pixel is Dirichlet data
on the fine grid and becomes a weakened diagonal on coarser ones, with no
rule to choose. Each operator is a symmetric variable-coefficient 9-point
stencil, stored as its 5 independent offsets ``_UNIQUE`` (the other 4 are
shifted copies) and coarsened one axis at a time. A symmetric V(1,1) cycle
with Jacobi smoothing (smoothing factor 1/3 for this stencil) and a dense
solve on a grid of at most ``_COARSEST`` nodes is an SPD preconditioner for
conjugate gradients. Every tensor has a leading (systems, channels) batch;
stencils and masks have one channel and broadcast over the image's channels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

_COARSEST = 30  # grids with at most this many nodes are solved densely
_MARGIN = 3  # zero margin around stored stencils (room for shifted, strided views)
_UNIQUE = ((0, 0), (0, 1), (1, -1), (1, 0), (1, 1))  # (dy, dx) offsets stored
_HAT = {-1: 0.5, 0: 1.0, 1: 0.5}
# a_e(y, x) = stored[i][y + sy, x + sx]: a_{-e}(k) = a_e(k - e) by symmetry
_SOURCE = {e: (i, 0, 0) for i, e in enumerate(_UNIQUE)} | {
    (-dy, -dx): (i, -dy, -dx) for i, (dy, dx) in enumerate(_UNIQUE) if i
}
# coarse offset d -> [(fine offset e, position u in the coarse node's support), weight]
_TERMS = {
    d: [
        ((e, u), _HAT[u] * _HAT[u + e - 2 * d])
        for e in (-1, 0, 1)
        for u in (-1, 0, 1)
        if abs(u + e - 2 * d) <= 1
    ]
    for d in (-1, 0, 1)
}


def _coarse_size(n: int) -> int:
    return n // 2 + 1


def _shape(stored: Tensor) -> tuple[int, int]:
    return stored.shape[-2] - 2 * _MARGIN, stored.shape[-1] - 2 * _MARGIN


def fields(stored: Tensor) -> dict[tuple[int, int], Tensor]:
    """All 9 offsets (dy, dx) -> (S, 1, h, w) of a stored symmetric stencil (views)."""
    h, w = _shape(stored)
    out = {}
    for offset, (i, sy, sx) in _SOURCE.items():
        y, x = _MARGIN + sy, _MARGIN + sx
        out[offset] = stored[:, :, i, y : y + h, x : x + w]
    return out


def _coarsen_axis(stored: Tensor, axis: int) -> Tensor:
    """Galerkin product with bilinear prolongation along ``axis`` (-1: x, -2: y)."""
    h, w = _shape(stored)
    m = _coarse_size(w if axis == -1 else h)
    oh, ow = (h, m) if axis == -1 else (m, w)
    out = stored.new_zeros(*stored.shape[:3], oh + 2 * _MARGIN, ow + 2 * _MARGIN)
    mg = _MARGIN
    for k, (dy, dx) in enumerate(_UNIQUE):
        d, other = (dx, dy) if axis == -1 else (dy, dx)
        dst = out[:, :, k, mg : mg + oh, mg : mg + ow]
        for j, ((e, u), weight) in enumerate(_TERMS[d]):
            i, sy, sx = _SOURCE[(other, e) if axis == -1 else (e, other)]
            y, x = mg + sy, mg + sx
            if axis == -1:
                src = stored[:, :, i, y : y + h, x + u : x + u + 2 * m - 1 : 2]
            else:
                src = stored[:, :, i, y + u : y + u + 2 * m - 1 : 2, x : x + w]
            if j == 0:
                torch.mul(src, weight, out=dst)
            else:
                dst.add_(src, alpha=weight)
    return out


def coarsen(stored: Tensor, halve: tuple[bool, bool]) -> Tensor:
    """Return the stored Galerkin coarse stencil of a stored stencil."""
    if halve[1]:
        stored = _coarsen_axis(stored, -1)
    if halve[0]:
        stored = _coarsen_axis(stored, -2)
    return stored


def fine_stencil(unknown: Tensor, degree: Tensor) -> Tensor:
    """Return the stored stencil (S, 1, 5, H + 2 margin, W + 2 margin) of ``A`` for (S, 1, H, W) masks."""
    s, _, h, w = unknown.shape
    mg = _MARGIN
    pad = F.pad(unknown, (1, 1, 1, 1))
    out = unknown.new_zeros(s, 1, 5, h + 2 * mg, w + 2 * mg)
    torch.mul(unknown, degree, out=out[:, :, 0, mg : mg + h, mg : mg + w])
    for k, (dy, dx) in enumerate(_UNIQUE[1:], start=1):
        weight = -1 / 6 if dy == 0 or dx == 0 else -1 / 12
        dst = out[:, :, k, mg : mg + h, mg : mg + w]
        torch.mul(unknown, pad[..., 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w], out=dst)
        dst.mul_(weight)
    return out


def apply(stencil: Tensor, u: Tensor) -> Tensor:
    """Apply a 9-point stencil (S, 1, 3, 3, h, w) to u (S, C, h, w)."""
    s, c, h, w = u.shape
    pad = F.pad(u, (1, 1, 1, 1))
    st = pad.stride()
    view = pad.as_strided((s, c, 3, 3, h, w), (st[0], st[1], st[2], st[3], st[2], st[3]))
    return (stencil * view).sum(dim=(2, 3))


def _inv_diag(diag: Tensor) -> Tensor:
    return torch.where(diag > 0, 1 / diag.clamp_min(torch.finfo(diag.dtype).tiny), 0)


def _smoother(full: dict[tuple[int, int], Tensor]) -> Tensor:
    """Jacobi weights ``1 / max(a_ii, sum_j |a_ij| / 1.9)`` of a coarse stencil.

    ``A <= diag(sum_j |a_ij|)``, so these weights keep every eigenvalue of
    ``W A`` below 1.9 and the smoother convergent. Plain Jacobi is not: a fine
    unknown seen only by four coarse nodes gives them a rank-one block with
    ``D^-1 A`` eigenvalue 4. On ordinary rows (zero row sum) this is Jacobi
    damped by 0.95.
    """
    l1 = full[(0, 0)].abs()
    for offset, field in full.items():
        if offset != (0, 0):
            l1 = l1.add_(field.abs())
    return _inv_diag(torch.maximum(full[(0, 0)], l1.div_(1.9)))


def _dense_inverse(full: dict[tuple[int, int], Tensor], exact: bool) -> Tensor:
    """Inverse of the dense matrix of a small stencil (a coarse one slightly regularised).

    Rows without a diagonal (known pixels, coarse nodes over known pixels
    only) become identity rows. A coarse Galerkin matrix can be singular
    (a fine unknown seen by several coarse nodes and nothing else), so its
    diagonal grows by 1e-4; the fine one (``exact``) is solved in float64.
    """
    centre = full[(0, 0)]
    s, _, h, w = centre.shape
    device = centre.device
    ys, xs = torch.meshgrid(
        torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij"
    )
    matrix = centre.new_zeros(s, h * w, h * w)
    for (dy, dx), field in full.items():
        valid = (ys + dy >= 0) & (ys + dy < h) & (xs + dx >= 0) & (xs + dx < w)
        rows = (ys * w + xs)[valid]
        matrix[:, rows, rows + dy * w + dx] = field[:, 0][:, valid]
    diag = matrix.diagonal(dim1=1, dim2=2)
    diag.copy_(torch.where(diag > 0, diag * (1 if exact else 1 + 1e-4), 1))
    if exact:
        matrix = matrix.double()
    chol, _ = torch.linalg.cholesky_ex(matrix)
    return torch.cholesky_inverse(chol).to(centre.dtype)


@dataclass
class Level:
    """One grid: stencil, Jacobi weights, halving to the next grid, dense inverse if coarsest."""

    stencil: Tensor  # (S, 1, 3, 3, h, w): weight of u[y + dy, x + dx] at [1 + dy, 1 + dx]
    inv_diag: Tensor
    halve: tuple[bool, bool]
    inverse: Tensor | None = None

    def select(self, keep: Tensor) -> Level:
        """Keep the systems ``keep`` (an index tensor)."""
        inverse = None if self.inverse is None else self.inverse[keep]
        return Level(self.stencil[keep], self.inv_diag[keep], self.halve, inverse)


def hierarchy(stored: Tensor) -> list[Level]:
    """Levels from a stored fine stencil down to a grid solved densely (fine: diagonal only)."""
    levels: list[Level] = []
    while True:
        h, w = _shape(stored)
        halve = (h >= 3, w >= 3)
        full = fields(stored)
        coarsest = h * w <= _COARSEST or not any(halve)
        inverse = _dense_inverse(full, exact=not levels) if coarsest else None
        if levels:
            nine = torch.stack([full[(dy, dx)] for dy in (-1, 0, 1) for dx in (-1, 0, 1)], dim=2)
            nine = nine.view(*nine.shape[:2], 3, 3, h, w)
            levels.append(Level(nine, _smoother(full), halve, inverse))
        else:
            diag = full[(0, 0)]
            levels.append(Level(diag, _inv_diag(diag), halve, inverse))
        if coarsest:
            return levels
        stored = coarsen(stored, halve)


def prolong(c: Tensor, size: tuple[int, int], halve: tuple[bool, bool]) -> Tensor:
    """Bilinear prolongation of coarse nodes to a (h, w) grid (only along halved axes)."""
    if halve[1]:
        m = c.shape[-1]
        f = c.new_empty(*c.shape[:-1], 2 * m - 1)
        f[..., 0::2] = c
        torch.add(c[..., :-1], c[..., 1:], out=f[..., 1::2]).mul_(0.5)
        c = f[..., : size[1]]
    if halve[0]:
        m = c.shape[-2]
        f = c.new_empty(*c.shape[:-2], 2 * m - 1, c.shape[-1])
        f[..., 0::2, :] = c
        torch.add(c[..., :-1, :], c[..., 1:, :], out=f[..., 1::2, :]).mul_(0.5)
        c = f[..., : size[0], :]
    return c


def restrict(f: Tensor, halve: tuple[bool, bool]) -> Tensor:
    """Transpose of :func:`prolong` (full weighting, zero outside the grid)."""
    if halve[1]:
        w = f.shape[-1]
        m = _coarse_size(w)
        pad = F.pad(f, (1, 2 * m - w))
        f = (pad[..., 0 : 2 * m - 1 : 2] + pad[..., 2 : 2 * m + 1 : 2]).mul_(0.5)
        f += pad[..., 1 : 2 * m : 2]
    if halve[0]:
        h = f.shape[-2]
        m = _coarse_size(h)
        pad = F.pad(f, (0, 0, 1, 2 * m - h))
        f = (pad[..., 0 : 2 * m - 1 : 2, :] + pad[..., 2 : 2 * m + 1 : 2, :]).mul_(0.5)
        f += pad[..., 1 : 2 * m : 2, :]
    return f


def vcycle(levels: list[Level], index: int, rhs: Tensor) -> Tensor:
    """Approximately solve level ``index`` for ``rhs`` with a V(1,1) cycle (exactly if coarsest)."""
    level = levels[index]
    if level.inverse is not None:
        s, c, h, w = rhs.shape
        flat = rhs.reshape(s, c, h * w).transpose(1, 2)
        return torch.bmm(level.inverse, flat).transpose(1, 2).reshape(s, c, h, w)
    e = rhs * level.inv_diag
    res = rhs - apply(level.stencil, e)
    coarse = vcycle(levels, index + 1, restrict(res, level.halve))
    e += prolong(coarse, (rhs.shape[-2], rhs.shape[-1]), level.halve)
    res = rhs - apply(level.stencil, e)
    return e.addcmul_(res, level.inv_diag)
