"""Keep freed tensor buffers in the process, so chunks stop page-faulting their memory.

With glibc, PyTorch's CPU tensors come from ``malloc``. glibc serves requests
above its mmap threshold (128 KB at start; it adapts, but not past 32 MB) with
``mmap`` and unmaps them on free, and gives heap memory above 128 KB at the top
back to the OS. Every chunk of perturbed images and every activation of the
model is such a buffer, so each chunk faulted its pages back in: on the
benchmark's tiny CNN, pixel flipping took a median 5.5 ms per call interleaved
with other work and 3.4 ms with the thresholds below (Quantus in the same
process: unchanged), and the page faults per evaluation fell by orders of
magnitude (``tests/metrics/test_allocator.py``).

:func:`keep_freed_memory` sets ``M_MMAP_THRESHOLD`` to 32 MB and
``M_TRIM_THRESHOLD`` to 256 MB, once per process: freed buffers stay in the
heap for the next chunk (the process keeps up to 256 MB it no longer uses).
The engine calls it before evaluating chunks; ``HARNESS_TUNE_MALLOC=0`` or
``EngineConfig.tune_allocator=False`` leaves the allocator alone. Elsewhere
than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20  # glibc's largest allowed value on 64-bit systems
TRIM_THRESHOLD = 256 * 2**20
ENV = "HARNESS_TUNE_MALLOC"

_STATE: list[bool] = []


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds once per process; return True if they are set."""
    if _STATE:
        return _STATE[0]
    applied = False
    if os.environ.get(ENV, "1") == "0":
        log.debug("%s=0: malloc thresholds left alone", ENV)
    elif platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        mallopt = ctypes.CDLL(None).mallopt
        applied = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
            mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
        )
        log.debug("malloc thresholds raised: %s", applied)
    _STATE.append(applied)
    return applied
