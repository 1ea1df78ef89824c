"""Per-sample random draws: a row's numbers depend on (seed, sample id, draw index) only.

Public for plugins (metrics and stochastic explainers alike). A metric that draws random perturbations for a whole batch from one stream
gives a row different numbers when other rows join or leave the batch, so a
sample's score would depend on its neighbours. Here every row gets its own
generator, seeded from a stable hash of ``(salt, seed, batch.ids[i])``; the
row's draws are then the same in any batch, at any position and for any
engine chunk size. The Python loop over rows only generates random numbers
(about 4 us per row on this CPU); model calls stay batched.

:func:`explainer_seed` carries the seed of an attribution to the metrics
that explain again, so a stochastic explainer repeats its draws there.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
import torch
from torch import Tensor

_SEED_BITS = 62
SECOND_RUN = 0x2545F4914F6CDD1D


def second_run_seed(seed: int) -> int:
    """Return the seed of a stochastic metric's agreement run, ``seed ^ SECOND_RUN``.

    A metric that reports ``notes["run_agreement"]`` by repeating its random
    draws scores the second run as the same metric with this seed would, so a
    test (or a user) can replay either run on its own.
    """
    return int(seed) ^ SECOND_RUN


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (every device) so a stage gives the same output on every run."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


_EXPLAINER_SEED: ContextVar[int | None] = ContextVar("harness_explainer_seed", default=None)


@contextmanager
def explainer_seed(seed: int | None) -> Iterator[None]:
    """Inside the block, every explainer call the harness makes starts from ``seed``.

    A metric that explains again (random logit, parameter randomisation,
    sensitivity, data randomisation) then gives a stochastic explainer
    (LIME, KernelSHAP, SmoothGrad) the draws it had when the attribution was
    made, if the runner passes the attribution stage's seed: common random
    numbers, so a map changes because the class, the weights or the input
    changed, not because the explainer drew new samples. ``None`` leaves the
    explainer calls to the caller's random state.
    """
    token = _EXPLAINER_SEED.set(None if seed is None else int(seed))
    try:
        yield
    finally:
        _EXPLAINER_SEED.reset(token)


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed Python, NumPy and torch (every visible CUDA device) for the block, then restore them."""
    py_state, np_state = random.getstate(), np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    try:
        with torch.random.fork_rng(devices=devices):
            seed_everything(seed)
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


@contextmanager
def seeded_explainer_calls() -> Iterator[None]:
    """Run the block :func:`seeded` with :func:`explainer_seed`'s seed; without one, as it is.

    The runner seeds an attribution stage the same way (``seed_everything``),
    so an explainer reading ``torch.initial_seed()`` or drawing from the global
    generators draws the same numbers again.
    """
    seed = _EXPLAINER_SEED.get()
    with contextlib.nullcontext() if seed is None else seeded(seed):
        yield


def base_seed(seed: int | None) -> int:
    """Return ``seed``, or one drawn from torch's global generator when it is None.

    The global generator is seeded by the runner, so unseeded runs still repeat.
    """
    if seed is None:
        return int(torch.randint(0, 2**_SEED_BITS, ()).item())
    return int(seed)


def row_seeds(salt: str, seed: int, ids: Sequence[str]) -> list[int]:
    """Return a 63-bit seed per sample id: BLAKE2b of ``salt``, ``seed`` and the id.

    ``salt`` (a metric's name, or one shared by metrics that should see the
    same draws) keeps other metrics with the same seed from drawing the same
    numbers. torch's CPU generator (MT19937) uses the low 32
    bits of its seed, so two samples share a stream with probability 2**-32
    per pair; that only correlates their draws and never mixes up rows.
    """
    prefix = f"{salt}\0{int(seed)}\0".encode()
    return [
        int.from_bytes(hashlib.blake2b(prefix + i.encode(), digest_size=8).digest(), "big")
        & (2**63 - 1)
        for i in ids
    ]


def _generator(device: torch.device) -> torch.Generator | None:
    """Return a generator on ``device``, or None when the device has none (draw on the CPU)."""
    try:
        return torch.Generator(device=device)
    except RuntimeError:
        return None


Draw = Callable[..., Tensor]  # torch.rand or torch.randn


def _fill_rows(draw: Draw, seeds: Sequence[int], shape: tuple[int, ...], out: Tensor) -> Tensor:
    """Fill ``out[i]`` with ``draw(shape)`` from a generator seeded ``seeds[i]``, on out's device."""
    gen = _generator(out.device)
    for i, seed in enumerate(seeds):
        if gen is None:
            row = draw(shape, generator=torch.Generator().manual_seed(seed), dtype=out.dtype)
            out[i].copy_(row)
        else:
            draw(shape, generator=gen.manual_seed(seed), dtype=out.dtype, out=out[i])
    return out


def uniform_rows(
    seeds: Sequence[int],
    shape: tuple[int, ...],
    *,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
    out: Tensor | None = None,
) -> Tensor:
    """Return (len(seeds), *shape) draws of U[0, 1); row ``i`` from a generator seeded ``seeds[i]``.

    The draws are made on ``device`` (torch's default if None) by a generator on that
    device, so no copy crosses devices; a device without generators draws on
    the CPU and copies. The same seed gives the same row on the CPU anywhere;
    CUDA's generator gives other numbers, and for rows of more than about a
    million draws they can also depend on the GPU model. ``out``, if given, is
    filled and returned (its device and dtype are used); it may be a strided view, e.g.
    ``buffer.permute(1, 0, 2)`` to lay rows side by side, and each row holds
    the same numbers as a contiguous draw.
    """
    if out is None:
        out = torch.empty((len(seeds), *shape), device=device, dtype=dtype)
    return _fill_rows(torch.rand, seeds, shape, out)


def normal_rows(
    seeds: Sequence[int],
    shape: tuple[int, ...],
    *,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Return (len(seeds), *shape) standard normal draws; row ``i`` from a generator seeded ``seeds[i]``.

    As :func:`uniform_rows` (same devices and guarantees), for Gaussian noise.
    """
    out = torch.empty((len(seeds), *shape), device=device, dtype=dtype)
    return _fill_rows(torch.randn, seeds, shape, out)
