"""Explain a batch a chunk of rows at a time, halving the chunk after an out-of-memory error.

Shared by the pipeline's explain stage (the spec's ``explain.batch_size``) and
the metrics that re-explain perturbed copies (robustness): a model or an
explainer that does not fit at the asked size on the device finishes at a
smaller one instead of failing its cell.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from harness.metrics._engine import is_oom, release_cached_memory

if TYPE_CHECKING:
    from torch import Tensor

    from harness.contracts import Attribution, Batch, Explainer, Model

log = logging.getLogger(__name__)


def explain_chunks(
    model: Model,
    explainer: Explainer,
    batch: Batch,
    targets: Tensor,
    size: int,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[Attribution], int]:
    """Explain ``batch`` ``size`` rows per call, halving on out-of-memory; (parts, final size).

    The parts cover the rows in order. An out-of-memory error at one row per
    call, or any other error, propagates. ``progress(done, total)`` is called
    with 0 rows first and after every explained chunk.
    """
    total = len(batch)
    if progress is not None and total:
        progress(0, total)
    size = max(1, int(size))
    parts: list[Attribution] = []
    start = 0
    while start < total:
        stop = min(total, start + size)
        part = batch if stop - start == total else batch.index(torch.arange(start, stop))
        try:
            parts.append(explainer.explain(model, part, targets[start:stop]))
        except RuntimeError as exc:
            if not is_oom(exc) or size == 1:
                raise
            release_cached_memory(model.device)
            size = max(1, size // 2)
            log.warning(
                "%s: out of memory explaining %d rows; retrying at %d",
                explainer.name,
                stop - start,
                size,
            )
            continue
        start = stop
        if progress is not None:
            progress(start, total)
    return parts, size
