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
of a chunk are solved at once by conjugate gradients, applying the matrix as
one 3x3 stencil: small holes by Jacobi-preconditioned CG, holes still open
after a few steps by CG preconditioned with a geometric multigrid V-cycle
(:mod:`harness.metrics.faithfulness._multigrid`), whose step count hardly
grows with the hole's size. Each system stops when its residual is below
``tol`` times its right-hand side; the tests check agreement with ``spsolve``.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import Tensor

from harness.metrics.faithfulness._multigrid import (
    Level,
    fine_stencil,
    hierarchy,
    prolong,
    restrict,
    vcycle,
)

log = logging.getLogger(__name__)


def _smear(v: Tensor) -> Tensor:
    """Apply the 3x3 stencil ``[1, 2, 1]`` x ``[1, 2, 1]`` to the last two dims (zero outside).

    Two 1-D passes of shifted additions instead of a (slow in float64) 3x3
    convolution; the result is a fresh tensor callers may modify in place.
    """
    p = F.pad(v, (1, 1, 1, 1))
    rows = p[..., :, :-2] + p[..., :, 2:]
    rows.add_(p[..., :, 1:-1], alpha=2)
    both = rows[..., :-2, :] + rows[..., 2:, :]
    return both.add_(rows[..., 1:-1, :], alpha=2)


def _neighbour_sum(v: Tensor) -> Tensor:
    """Weighted sum of each pixel's 8 neighbours inside the image (zero outside).

    The stencil ``[[1, 2, 1], [2, 0, 2], [1, 2, 1]] / 12`` is :func:`_smear`
    minus 4 times the centre.
    """
    return _smear(v).sub_(v, alpha=4).div_(12)


def _dot(a: Tensor, b: Tensor) -> Tensor:
    return torch.einsum("schw,schw->sc", a, b).unsqueeze(-1).unsqueeze(-1)


class Fine:
    """The fine operator (matrix-free) and, given a hierarchy, the V-cycle preconditioner."""

    def __init__(self, unknown: Tensor, degree: Tensor, levels: list[Level] | None) -> None:
        self.unknown = unknown
        self.scale = unknown * (-1 / 12)
        self.centre = degree.mul(-12).sub_(4)
        self.inv_diag = unknown / degree
        self.levels = levels

    def select(self, keep: Tensor) -> None:
        """Keep the systems ``keep`` (an index tensor)."""
        self.unknown, self.scale, self.inv_diag = (
            t[keep] for t in (self.unknown, self.scale, self.inv_diag)
        )
        if self.levels is not None:
            self.levels = [level.select(keep) for level in self.levels]

    def op(self, v: Tensor) -> Tensor:
        """Return ``A v``: :func:`_smear` (``12 N v + 4 v``), then the masked correction."""
        return _smear(v).addcmul_(self.centre, v).mul_(self.scale)

    def precondition(self, r: Tensor, e: Tensor) -> Tensor:
        """Finish the V-cycle for ``r`` from its Jacobi step ``e = r / D`` (``e`` if no levels)."""
        if self.levels is None:
            return e
        halve = self.levels[0].halve
        res = r - self.op(e)
        coarse = vcycle(self.levels, 1, restrict(res, halve))
        e.addcmul_(prolong(coarse, (r.shape[-2], r.shape[-1]), halve), self.unknown)
        res = r - self.op(e)
        return e.addcmul_(res, self.inv_diag)


def pcg(
    fine: Fine,
    rhs: Tensor,
    v: Tensor,
    limit: Tensor,
    max_iter: int,
    give_up: tuple[int, float] | None = None,
) -> tuple[Tensor, Tensor]:
    """Preconditioned CG from ``v`` until ``r^T D^-1 r <= limit`` per system, at most ``max_iter`` steps.

    A converged system stops changing, so its result does not depend on the
    other systems of the batch; once a quarter of the images are done they
    leave the working set. ``give_up=(k, ratio)`` also stops the systems whose
    residual is still above ``ratio * limit`` after ``k`` steps. Returns the
    iterates and the converged flags (S, C).
    """
    out, done = v.clone(), torch.zeros_like(limit, dtype=torch.bool)
    failed = torch.zeros_like(done)
    idx = torch.arange(len(rhs), device=rhs.device)
    r = rhs - fine.op(v)
    e = r * fine.inv_diag
    active = _dot(r, e) > limit
    z = fine.precondition(r, e)
    p = z.clone()
    rz = _dot(r, z)
    for step in range(max_iter):
        running = active.flatten(1).any(dim=1)
        n_done = len(running) - int(running.sum())
        if n_done == len(running):
            break
        if 4 * n_done >= len(running):
            out[idx], done[idx] = v, ~active & ~failed
            keep = running.nonzero().view(-1)
            idx, v, r, p, rz, active, failed, limit = (
                t[keep] for t in (idx, v, r, p, rz, active, failed, limit)
            )
            fine.select(keep)
        ap = fine.op(p)
        pap = _dot(p, ap)
        alpha = torch.where(active & (pap > 0), rz / pap, 0)
        v.addcmul_(alpha, p)
        r.addcmul_(alpha, ap, value=-1)
        e = r * fine.inv_diag
        residual = _dot(r, e)
        active &= residual > limit
        if give_up is not None and step + 1 == give_up[0]:
            failed |= active & (residual > give_up[1] * limit)
            active &= ~failed
        if fine.levels is None:
            z, rz_new = e, residual
        else:
            if not bool(active.any()):
                break
            z = fine.precondition(r, e)
            rz_new = _dot(r, z)
        beta = torch.where(rz > 0, rz_new / rz, 0)
        p = torch.addcmul(z, beta, p)
        rz = rz_new
    out[idx], done[idx] = v, ~active & ~failed
    return out, done.flatten(1)


def solve(
    rhs: Tensor,
    unknown: Tensor,
    degree: Tensor,
    tol: float,
    jacobi: int = 20,
    give_up: tuple[int, float] | None = (8, 1e6),
) -> Tensor:
    """Solve ``A v = rhs`` for (S, C, H, W) right-hand sides to ``r^T D^-1 r <= tol^2 rhs^T D^-1 rhs``.

    ``unknown`` (S, 1, H, W) is the 0/1 mask, ``degree`` (1, 1, H, W) the
    stencil's row sums. Up to ``jacobi`` steps of Jacobi-preconditioned CG
    settle the small holes; the systems still running continue from there with
    multigrid-preconditioned CG (whose setup and steps cost several plain ones).
    """
    fine = Fine(unknown, degree, None)
    limit = tol**2 * _dot(rhs, rhs * fine.inv_diag)
    v, done = pcg(fine, rhs, torch.zeros_like(rhs), limit, jacobi, give_up)
    hard = (~done).any(dim=1).nonzero().view(-1)
    if len(hard):
        levels = hierarchy(fine_stencil(unknown[hard], degree))
        if levels[0].inverse is not None:
            v[hard] = vcycle(levels, 0, rhs[hard])
        else:
            fine = Fine(unknown[hard], degree, levels)
            h, w = rhs.shape[-2:]
            v[hard], done = pcg(fine, rhs[hard], v[hard], limit[hard], 2 * (h + w) + 50)
            if not bool(done.all()):
                log.warning("imputation: %d systems not converged", int((~done).sum()))
    return v


def linear_imputation(images: Tensor, removed: Tensor, *, tol: float | None = None) -> Tensor:
    """Return ``images`` (M, C, H, W) with ``removed`` (M, 1, H, W) pixels imputed (no noise).

    Solved in the input's precision (float64 input: ``tol=1e-7``; otherwise
    float32 and ``tol=1e-5``, relative to the right-hand side in the
    ``D^-1`` norm), one system per image and channel, all advanced together.
    """
    x = images
    if not x.is_floating_point() or x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    tol = tol if tol is not None else (1e-7 if x.dtype == torch.float64 else 1e-5)
    unknown = removed.to(x.dtype)
    degree = _neighbour_sum(torch.ones_like(x[:1, :1]))
    rhs = unknown * _neighbour_sum(x * (1 - unknown))
    out = solve(rhs, unknown, degree, tol)
    return torch.where(removed, out, x).to(images.dtype)


_MASK64 = (1 << 64) - 1


def _mix(z: Tensor) -> Tensor:
    """SplitMix64 finaliser on int64 tensors (wrapping arithmetic, logical shifts)."""
    for shift, mult in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):
        z = z ^ ((z >> shift) & ((1 << (64 - shift)) - 1))
        z = z * (mult - (1 << 64) if mult >= 1 << 63 else mult)
    return z ^ ((z >> 31) & ((1 << 33) - 1))


def hashed_normal(seed: int, image_ids: Tensor, numel: int) -> Tensor:
    """Return float32 standard normal draws (M, numel) depending only on (seed, image id, position).

    A counter-based generator: one SplitMix64 hash per draw gives two 24-bit
    uniforms (bits 40-63 and 8-31) for a float32 Box-Muller transform (tails
    reach 5.9 sigma). The noise of an image is the same whatever chunk it is
    evaluated in, so chunk sizes never change ROAD's values; on another device
    the hashes are equal and the float32 transform may differ in the last bit.
    (ROAD version 1 hashed twice per draw and used float64 maths.)
    """
    device = image_ids.device
    pos = torch.arange(numel, device=device, dtype=torch.int64)
    base = (seed * 0x9E3779B97F4A7C15) & _MASK64
    base = base - (1 << 64) if base >= 1 << 63 else base
    z = _mix(image_ids.view(-1, 1).to(torch.int64) * numel + pos.view(1, -1) + base)
    scale = 1.0 / (1 << 24)
    u1 = ((z >> 40) & 0xFFFFFF).float().add_(0.5).mul_(scale)
    u2 = ((z >> 8) & 0xFFFFFF).float().add_(0.5).mul_(scale)
    return u1.log_().mul_(-2).sqrt_().mul_(u2.mul_(2 * torch.pi).cos_())


def noisy_linear_imputation(
    images: Tensor, removed: Tensor, *, noise: float, seed: int, image_ids: Tensor
) -> Tensor:
    """Linear imputation plus ``noise * N(0, 1)`` on the removed pixels (ROAD's NoisyLinear).

    ``image_ids`` (M,) names each image for :func:`hashed_normal`.
    """
    return add_noise(
        linear_imputation(images, removed), removed, noise=noise, seed=seed, image_ids=image_ids
    )


def add_noise(
    imputed: Tensor, removed: Tensor, *, noise: float, seed: int, image_ids: Tensor
) -> Tensor:
    """Return ``imputed`` plus ``noise * N(0, 1)`` (:func:`hashed_normal`) on its ``removed`` pixels."""
    if not noise or not len(imputed):
        return imputed
    draw = hashed_normal(seed, image_ids, imputed[0].numel()).view_as(imputed).to(imputed.dtype)
    return torch.where(removed.expand_as(imputed), imputed + noise * draw, imputed)
