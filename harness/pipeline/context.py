"""The run context shared by every stage, the stage cache wrapper and result recording."""

from __future__ import annotations

import logging
import math
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from harness.draws import seed_everything
from harness.errors import CapabilityError, ContractViolation, StoreError
from harness.planner import NO_EXPLAINER, Cell, Plugins
from harness.progress import ProgressSink
from harness.spec import Spec
from harness.stages import ArtefactCache
from harness.store import ResultRow, ResultSink

log = logging.getLogger(__name__)

Computed = tuple[Mapping[str, Tensor] | None, Any]


@dataclass
class RunContext:
    """Everything a group needs: spec, plugins, cache, store and reporting."""

    spec: Spec
    plugins: Plugins
    cache: ArtefactCache
    store: ResultSink
    run_id: int
    device: torch.device
    progress: ProgressSink
    provenance: Mapping[str, str]
    on_cell: Callable[[ResultRow], None]
    force: bool = False
    forced: set[str] = field(default_factory=set)


def key_seed(key: str) -> int:
    """Derive a reproducible integer seed from a stage key."""
    return int(key[:8], 16)


def cached(
    ctx: RunContext,
    key: str,
    what: str,
    compute: Callable[[], Computed],
    *,
    seed: int | None = None,
) -> tuple[dict[str, Tensor], Any, float]:
    """Return a stage's tensors, data and compute seconds, computing it only once.

    The random generators are seeded with ``seed`` before computing (default:
    derived from ``key``). A cache entry that cannot be read (a truncated file,
    a sidecar without its artefact) is dropped with one warning and recomputed.
    """
    if ctx.force and key not in ctx.forced:
        ctx.cache.drop(key)
        ctx.forced.add(key)
    if ctx.cache.has(key):
        try:
            meta = ctx.cache.meta(key)
            tensors = ctx.cache.load_tensors(key) if meta.get("tensors") else {}
            data = ctx.cache.load_data(key) if meta.get("data") else None
            seconds = float(meta.get("seconds", 0.0))
        except (StoreError, TypeError, ValueError) as exc:
            log.warning("stage cache entry of %s is unreadable, recomputing it: %s", what, exc)
            ctx.cache.drop(key)
        else:
            log.debug("cache hit %s (%s)", what, key)
            return tensors, data, seconds
    seed_everything(key_seed(key) if seed is None else seed)
    start = time.perf_counter()
    computed, data = compute()
    seconds = time.perf_counter() - start
    ctx.cache.save(
        key,
        tensors=computed,
        data=data,
        meta={
            "stage": what,
            "seconds": seconds,
            "tensors": computed is not None,
            "data": data is not None,
        },
    )
    return dict(computed or {}), data, seconds


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def make_row(ctx: RunContext, cell: Cell, status: str, **kw: Any) -> ResultRow:
    """Build the result row of ``cell`` with its metric's metadata and provenance."""
    metric = ctx.plugins.metrics[cell.metric]
    parts = {"dataset": cell.dataset, "model": cell.model, "metric": cell.metric}
    if cell.explainer != NO_EXPLAINER:
        parts["explainer"] = cell.explainer
    return ResultRow(
        dataset=cell.dataset,
        model=cell.model,
        explainer=cell.explainer,
        metric=cell.metric,
        status=status,
        kind=metric.get_tags().kind.value,
        higher_is_better=metric.higher_is_better,
        device=str(ctx.device),
        spec_hash=ctx.spec.spec_hash,
        plugins={k: ctx.provenance.get(f"{k}:{v}", v) for k, v in parts.items()},
        **kw,
    )


def ok_row(
    ctx: RunContext,
    cell: Cell,
    summary: Mapping[str, Any],
    *,
    seconds: float,
    stage_key: str,
    **kw: Any,
) -> ResultRow:
    """Build the "ok" row of ``cell`` from a bootstrap summary (value, ci_low, ci_high, n).

    Raises
    ------
    ContractViolation
        When the value is not a finite number (a metric returning NaN fails its cell).
    """
    value = float(summary["value"])
    if not math.isfinite(value):
        raise ContractViolation(
            f"metric {cell.metric!r}: value on all {summary['n']} rows - expected a finite "
            f"number, got {value}."
        )
    return make_row(
        ctx,
        cell,
        "ok",
        value=summary["value"],
        ci_low=summary["ci_low"],
        ci_high=summary["ci_high"],
        n=summary["n"],
        seconds=seconds,
        stage_key=stage_key,
        **kw,
    )


def record(
    ctx: RunContext,
    row: ResultRow,
    samples: Sequence[tuple[str, int, float]] = (),
    curves: Mapping[str, Any] | None = None,
) -> None:
    """Write one result and report it."""
    ctx.store.write_cell(ctx.run_id, row, samples, curves)
    ctx.on_cell(row)
    ctx.progress.advance()


def fail_cells(ctx: RunContext, cells: Sequence[Cell], exc: BaseException, stage: str) -> None:
    """Record ``cells`` as failed because ``stage`` raised ``exc``.

    A :class:`CapabilityError` (the plugin cannot handle this model or data)
    marks the cells skipped with its message instead. A :class:`StoreError`
    (the stage cache or the store cannot be written, e.g. a full disk) is no
    fault of the cells: it is raised again and stops the run, which stays
    resumable.
    """
    if isinstance(exc, StoreError):
        raise exc
    if isinstance(exc, CapabilityError):
        for cell in cells:
            skip_cell(ctx, cell, str(exc))
        return
    log.warning("%s failed: %s", stage, _error_text(exc), exc_info=log.isEnabledFor(logging.DEBUG))
    error, trace = f"{stage}: {_error_text(exc)}", "".join(traceback.format_exception(exc))
    for cell in cells:
        record(ctx, make_row(ctx, cell, "failed", error=error, traceback=trace))


def skip_cell(ctx: RunContext, cell: Cell, reason: str) -> None:
    """Record a cell that had nothing to score."""
    record(ctx, make_row(ctx, cell, "skipped", reason=reason))
