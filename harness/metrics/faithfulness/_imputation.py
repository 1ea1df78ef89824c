"""Batched noisy linear imputation (Rong et al. 2022, ROAD) on the model's device.

ROAD replaces every removed pixel by the weighted mean of its 8 neighbours
(weight 1/6 for the 4 direct and 1/12 for the 4 diagonal neighbours, only
neighbours inside the image counted), solved jointly for all removed pixels,
then adds Gaussian noise. For the removed set ``U`` this is the linear system

``D_i v_i - sum_{j in U} w_ij v_j = sum_{j not in U} w_ij x_j``  for i in U,

where ``D_i`` is the sum of the weights of i's neighbours inside the image.
The reference implementation (and Quantus) builds a sparse matrix and calls
``scipy.sparse.linalg.spsolve`` per image. The matrix is symmetric and
positive definite (weakly diagonally dominant, and every connected hole
touches a known pixel while at least one pixel is known), so here all images
of a chunk are solved at once by Jacobi-preconditioned conjugate gradients,
where applying the matrix is one 3x3 stencil. The iteration starts from a
coarse-to-fine fill (known values averaged over a pyramid), runs in the
input's precision, and stops when every system's residual is below ``tol``
times its right-hand side; the tests check agreement with ``spsolve``.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import Tensor

log = logging.getLogger(__name__)


def _neighbour_sum(v: Tensor) -> Tensor:
    """Weighted sum of each pixel's 8 neighbours inside the image (zero outside).

    The stencil ``[[1, 2, 1], [2, 0, 2], [1, 2, 1]] / 12`` is the separable
    ``[1, 2, 1]`` x ``[1, 2, 1]`` minus 4 times the centre, so it costs two 1-D
    passes of shifted additions instead of a (slow in float64) 3x3 convolution.
    """
    p = F.pad(v, (1, 1, 1, 1))
    rows = p[..., :, :-2] + 2 * p[..., :, 1:-1] + p[..., :, 2:]
    both = rows[..., :-2, :] + 2 * rows[..., 1:-1, :] + rows[..., 2:, :]
    return (both - 4 * v) / 12


def _pyramid_fill(x: Tensor, known: Tensor) -> Tensor:
    """Fill unknown pixels with known values averaged at the finest scale that has any."""
    values, weights = x * known, known.to(x.dtype)
    levels: list[tuple[Tensor, Tensor]] = []
    while True:
        levels.append((values, weights))
        if min(values.shape[-2:]) <= 1:
            break
        values = F.avg_pool2d(values, 2, ceil_mode=True)
        weights = F.avg_pool2d(weights, 2, ceil_mode=True)
    fill = levels[-1][0] / levels[-1][1].clamp_min(1e-12)
    for values, weights in reversed(levels[:-1]):
        up = F.interpolate(fill, size=values.shape[-2:], mode="bilinear", align_corners=False)
        has = weights > 0
        fill = torch.where(has, values / weights.clamp_min(1e-12), up)
    return torch.where(known, x, fill)


def linear_imputation(images: Tensor, removed: Tensor, *, tol: float | None = None) -> Tensor:
    """Return ``images`` (M, C, H, W) with ``removed`` (M, 1, H, W) pixels imputed (no noise).

    Jacobi-preconditioned conjugate gradients, one system per image and
    channel, all advanced together in the input's precision (float64 input:
    ``tol=1e-7``; float32: ``tol=1e-5``, relative to the right-hand side).
    Every 8 iterations the converged systems leave the working set, so a
    chunk mixing small and large holes costs little more than its large ones.
    """
    n, c, h, w = images.shape
    x = images.reshape(n * c, 1, h, w)
    if not x.is_floating_point() or x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    tol = tol if tol is not None else (1e-7 if x.dtype == torch.float64 else 1e-5)
    unknown = removed.repeat_interleave(c, dim=0).to(x.dtype)
    degree = _neighbour_sum(torch.ones_like(x[:1]))
    inv_degree = unknown / degree
    rhs = unknown * _neighbour_sum(x * (1 - unknown))
    v = unknown * _pyramid_fill(x, unknown == 0)
    out = v.clone()
    idx = torch.arange(n * c, device=x.device)
    r = rhs - unknown * (degree * v - _neighbour_sum(v))
    z = r * inv_degree
    p = z.clone()
    rz = _dot(r, z)
    limit = tol**2 * _dot(rhs, rhs * inv_degree)
    max_iter = 20 * (h + w) + 100
    for it in range(max_iter):
        if it % 8 == 0:
            keep = (rz > limit).view(-1)
            if not bool(keep.all()):
                out[idx] = v
                idx, unknown, inv_degree, v, r, p, rz, limit = (
                    t[keep] for t in (idx, unknown, inv_degree, v, r, p, rz, limit)
                )
            if len(idx) == 0:
                log.debug("imputation converged after %d iterations", it)
                break
        ap = unknown * (degree * p - _neighbour_sum(p))
        pap = _dot(p, ap)
        alpha = torch.where(pap > 0, rz / pap, torch.zeros_like(pap))
        v += alpha * p
        r -= alpha * ap
        z = r * inv_degree
        rz_new = _dot(r, z)
        p = z + torch.where(rz > 0, rz_new / rz, torch.zeros_like(rz)) * p
        rz = rz_new
    else:
        log.warning("imputation: %d systems not converged after %d iterations", len(idx), max_iter)
    out[idx] = v
    known = removed.repeat_interleave(c, dim=0) == 0
    return torch.where(known, x, out).reshape(n, c, h, w).to(images.dtype)


def _dot(a: Tensor, b: Tensor) -> Tensor:
    return (a * b).sum(dim=(2, 3), keepdim=True)


_MASK64 = (1 << 64) - 1


def _mix(z: Tensor) -> Tensor:
    """SplitMix64 finaliser on int64 tensors (wrapping arithmetic, logical shifts)."""
    for shift, mult in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):
        z = z ^ ((z >> shift) & ((1 << (64 - shift)) - 1))
        z = z * (mult - (1 << 64) if mult >= 1 << 63 else mult)
    return z ^ ((z >> 31) & ((1 << 33) - 1))


def hashed_normal(seed: int, image_ids: Tensor, numel: int) -> Tensor:
    """Return standard normal draws (M, numel) that depend only on (seed, image id, position).

    A counter-based generator (SplitMix64 + Box-Muller): the noise of an image
    is the same whatever chunk it is evaluated in and on whatever device, so
    chunk sizes never change ROAD's values.
    """
    device = image_ids.device
    pos = torch.arange(numel, device=device, dtype=torch.int64)
    base = (seed * 0x9E3779B97F4A7C15) & _MASK64
    base = base - (1 << 64) if base >= 1 << 63 else base
    key = image_ids.view(-1, 1).to(torch.int64) * (numel * 2) + pos.view(1, -1) * 2 + base

    def uniform(z: Tensor) -> Tensor:
        bits = (_mix(z) >> 11) & ((1 << 53) - 1)
        return (bits.double() + 0.5) / float(1 << 53)

    u1, u2 = uniform(key), uniform(key + 1)
    return torch.sqrt(-2 * torch.log(u1)) * torch.cos(2 * torch.pi * u2)


def noisy_linear_imputation(
    images: Tensor, removed: Tensor, *, noise: float, seed: int, image_ids: Tensor
) -> Tensor:
    """Linear imputation plus ``noise * N(0, 1)`` on the removed pixels (ROAD's NoisyLinear).

    ``image_ids`` (M,) names each image for :func:`hashed_normal`.
    """
    out = linear_imputation(images, removed)
    if noise:
        draw = hashed_normal(seed, image_ids, out[0].numel()).view_as(out).to(out.dtype)
        out = torch.where(removed.expand_as(out), out + noise * draw, out)
    return out
