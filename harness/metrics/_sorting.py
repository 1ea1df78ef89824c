"""Row-wise sorts for the metrics: torch's results, NumPy's vectorised speed on the CPU.

``torch.sort`` / ``torch.argsort`` on the CPU were the largest fixed cost of
the faithfulness metrics on small models: 0.45 ms for 16 x 784 floats here,
against 0.04 ms for the packed-key sort below (2 ms against 0.2 ms for
16 x 4096). NumPy sorts 64-bit integers with its SIMD kernels, so a stable
argsort of float32 rows is one integer sort of keys that pack an
order-preserving image of each value (high 32 bits) with its column index
(low 32 bits): equal values then keep column order, exactly as
``torch.argsort(..., stable=True)``; ``-0.0`` and ``0.0`` are equal, as in torch.

Other devices use torch, whose GPU sorts are fast; so do CPU rows whose values
float32 cannot hold exactly, or that contain NaN, unless the caller accepts
ties in any order (``stable=False``, e.g. for average ranks): then NumPy's
vectorised quicksort (3x torch's for 48 x 784 float64 values here).

Large inputs are sorted in row blocks on torch's intra-op thread count (NumPy
releases the GIL while sorting). On AMD Zen 4, NumPy's AVX-512 sort is slow
(its compress-store instruction is microcoded; numpy/x86-simd-sort#6): there,
16 x 4096 float32 values took 0.70 ms in one thread and 0.53 ms in two, float64
1.73 and 0.91 ms, so :func:`sort_rows` also sorts float64 rows that float32
holds exactly as float32.

A torch op on this many values runs on two OpenMP threads, and the worker then
spins on the other core for some milliseconds waiting for the next op: the sort
thread gets half a core (16 x 4096 float32: 0.42 ms in two threads, 0.74 ms
right after a 2-thread ``abs``, 0.70 ms in one thread). So the CPU work just
before a sort here (narrowing below, the metrics' finite check and complexity
magnitudes) is done in NumPy.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import Tensor

# values: below this, handing rows to another thread costs more than it saves
_PARALLEL_MIN = 32_768
_pool: tuple[int, ThreadPoolExecutor] | None = None  # (pid that made it, pool)


def _executor() -> ThreadPoolExecutor:
    """Return the sorting thread pool, made again in a forked child (whose pool has no threads)."""
    global _pool
    if _pool is None or _pool[0] != os.getpid():
        _pool = (os.getpid(), ThreadPoolExecutor(os.cpu_count() or 1, "harness-sort"))
    return _pool[1]


def _sort_in_place(x: np.ndarray) -> np.ndarray:
    """Sort each row of the 2-D array ``x`` in place, in row blocks on torch's thread count."""
    parts = min(torch.get_num_threads(), len(x))
    if parts < 2 or x.size < _PARALLEL_MIN:
        x.sort(axis=1)
        return x
    blocks = np.array_split(np.arange(len(x)), parts)
    pending = [_executor().submit(x[b[0] : b[-1] + 1].sort, axis=1) for b in blocks[1:]]
    x[blocks[0][0] : blocks[0][-1] + 1].sort(axis=1)
    for job in pending:
        job.result()
    return x


_SIGN = np.uint32(0x80000000)
_LOW = np.uint32(0x7FFFFFFF)
_ALL = np.uint32(0xFFFFFFFF)
_SHIFT = np.uint64(32)
_INDEX = np.uint64(0xFFFFFFFF)


def _narrowed(x: np.ndarray) -> np.ndarray | None:
    """Return float64 ``x`` as float32 if that holds every value exactly, else None (NaN: None)."""
    narrow = x.astype(np.float32)
    return narrow if np.array_equal(narrow, x) else None


def _packable(a: Tensor) -> np.ndarray | None:
    """Return ``a`` as a float32 NumPy array when the packed sort applies, else None."""
    if a.device.type != "cpu" or a.dim() != 2 or not a.is_floating_point():
        return None
    x = a.detach()
    if x.dtype == torch.float64:
        narrow = _narrowed(x.numpy())
        if narrow is None:
            return None
        values = narrow + np.float32(0.0)  # with -0.0 turned into 0.0
    else:
        values = x.float().numpy() + np.float32(0.0)  # a copy, with -0.0 turned into 0.0
    if np.isnan(values).any():
        return None
    return values


def _packed_argsort(values: np.ndarray, descending: bool) -> Tensor:
    """Stable argsort of float32 rows via one sort of (order key << 32 | column) integers."""
    bits = values.view(np.uint32)
    key32 = bits ^ ((bits >> np.uint32(31)) * _LOW | _SIGN)  # monotone map to unsigned
    if descending:
        key32 ^= _ALL
    keys = key32.astype(np.uint64)
    keys <<= _SHIFT
    keys |= np.arange(values.shape[1], dtype=np.uint64)
    _sort_in_place(keys)
    keys &= _INDEX
    return torch.from_numpy(keys.view(np.int64))


def argsort_rows(a: Tensor, *, descending: bool = False, stable: bool = True) -> Tensor:
    """Return the int64 indices that sort each row of (N, P), ties in column order.

    Equal to ``torch.argsort(a, dim=1, descending=descending, stable=True)``
    on every input; with ``stable=False`` equal values may come in any order.
    The result is on ``a``'s device.
    """
    values = _packable(a) if a.shape[-1] < 2**32 else None
    if values is not None:
        return _packed_argsort(values, descending)
    if not stable and a.device.type == "cpu" and a.dim() == 2:
        x = a.detach().numpy()
        if not (x.dtype.kind == "f" and np.isnan(x).any()):
            return torch.from_numpy(np.argsort(-x if descending else x, axis=1).astype(np.int64))
    return torch.argsort(a, dim=1, descending=descending, stable=True)


def sort_rows(a: Tensor) -> Tensor:
    """Return each row of (N, P) sorted ascending.

    On the CPU this uses NumPy's vectorised sort, measured 40-70x faster than
    ``torch.sort`` for 16 x 16384 floats on an Intel CPU; float64 rows that
    float32 holds exactly are sorted as float32 (the same values, half the
    bytes). Other devices use torch.
    """
    if a.device.type != "cpu" or a.dim() != 2:
        return a.sort(dim=-1).values
    x = a.detach().numpy()
    if x.dtype == np.float64:
        narrow = _narrowed(x)
        if narrow is not None:
            return torch.from_numpy(_sort_in_place(narrow).astype(np.float64))
    return torch.from_numpy(_sort_in_place(x.copy()))
