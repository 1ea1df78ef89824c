"""Explain a batch a chunk of rows at a time, halving the chunk after an out-of-memory error.

Shared by the pipeline's explain stage (the spec's ``explain.batch_size``) and
the metrics that explain again, :func:`explain_chunk` rows per call
(robustness's perturbed copies, the sanity checks' randomised models and other
classes): a model or an explainer that does not fit at the asked size on the
device finishes at a smaller one instead of failing its cell.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from harness.draws import seeded_explainer_calls
from harness.metrics._engine import budget_size, is_oom, release_cached_memory
from harness.metrics._engine_cache import weights_pinned
from harness.substeps import report_substep

if TYPE_CHECKING:
    from torch import Tensor

    from harness.contracts import Attribution, Batch, Explainer, Model

log = logging.getLogger(__name__)


def explain_chunk(device: torch.device, shape: tuple[int, ...], total: int) -> int:
    """Rows per explainer call for ``total`` inputs of ``shape`` explained again (adaptive default).

    At most 2**17 input pixels per call on CPU, whatever the channels (token
    ids: values; see :func:`~harness.metrics._engine.budget_size`), 2**22 on
    other devices, at most 1024 rows, split evenly over the calls. Explaining
    keeps the activations for the backward pass, so the budget is half the
    engine's forward chunk:
    measured with input x gradient on this CPU at 1 thread, 256 rows of a
    LeNet-sized CNN at 32 x 32 took 23 ms in calls of 64 or 128 rows and 30 ms
    in one call, while a two-convolution CNN at 28 x 28 (activations that fit
    the cache) was fastest in calls of 128-256.
    """
    budget = 2**17 if device.type == "cpu" else 2**22
    most = max(1, min(1024, budget // budget_size(shape)))
    calls = -(-max(1, total) // most)
    return -(-max(1, total) // calls)


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
    with 0 rows first and after every explained chunk (default:
    :func:`harness.substeps.report_substep`, which a metric's caller may route).
    Inside :func:`harness.draws.explainer_seed` the calls start from that seed
    (:func:`harness.draws.seeded_explainer_calls`), as the explain stage's do.
    """
    progress = progress or report_substep
    total = len(batch)
    if total:
        progress(0, total)
    size = max(1, int(size))
    parts: list[Attribution] = []
    start = 0
    with seeded_explainer_calls():
        while start < total:
            stop = min(total, start + size)
            part = batch if stop - start == total else batch.index(torch.arange(start, stop))
            try:
                with weights_pinned():  # explaining never writes weights: fingerprint them once
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
            progress(start, total)
    return parts, size
