"""Run one (dataset, model) group in another process and hand its results back.

A distributed executor cannot send the run's context (an open SQLite store, a
progress bar) to a worker. It sends a :class:`RemoteRun` instead: the spec the
driver validated and planned (never re-read from disk, so an edit during the
run cannot mix two versions) and what the worker needs to build its plugins
from the installed entry points. The worker runs the
group exactly as the local executor would, against the same stage cache, and
records what it would have written to the store; the driver replays those
records into its store (:func:`replay`), so reports, paired tests and resume
work as in a local run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from harness.planner import Cell
from harness.spec import Spec
from harness.store import ResultRow


@dataclass(frozen=True)
class RemoteRun:
    """What a worker needs to run groups of this run (picklable)."""

    spec: Spec
    blocked: tuple[str, ...]
    cache_dir: Path
    device: str
    run_id: int
    force: bool
    threads: int


@dataclass
class Recorder:
    """A result sink that keeps what a group writes, for the driver to replay."""

    cells: list[tuple[ResultRow, list[tuple[str, int, float]], dict[str, Any]]] = field(
        default_factory=list
    )
    galleries: list[tuple[tuple[str, str, str], list[tuple[str, int, str, str]]]] = field(
        default_factory=list
    )

    def write_cell(
        self,
        run_id: int,
        row: ResultRow,
        samples: Iterable[tuple[str, int, float]] = (),
        curves: Mapping[str, Any] | None = None,
    ) -> None:
        """Keep one cell's result, per-row scores and curves."""
        self.cells.append((row, list(samples), dict(curves or {})))

    def write_gallery(
        self, run_id: int, cell: tuple[str, str, str], items: Sequence[tuple[str, int, str, str]]
    ) -> None:
        """Keep a cell's example overlays."""
        self.galleries.append((cell, list(items)))


def run_group_here(run: RemoteRun, dataset: str, model: str, cells: Sequence[Cell]) -> Recorder:
    """Build the run's plugins and run one group; return what it recorded.

    Runs in the worker process, with as many torch threads as the driver has
    (training values depend on the thread count). An error while building
    the plugins comes back as a RuntimeError carrying its type and message
    (every exception type crosses the process boundary that way).
    """
    from harness.pipeline import RunContext, run_group
    from harness.plugin_manager import get_registries
    from harness.progress import NullProgress
    from harness.runner import instantiate
    from harness.stages import ArtefactCache

    torch.set_num_threads(run.threads)
    torch.set_grad_enabled(True)
    try:
        plugins, provenance, _ = instantiate(run.spec, get_registries(run.blocked))
    except Exception as exc:  # noqa: BLE001 - sent back as text, whatever its type
        raise RuntimeError(f"building the plugins: {type(exc).__name__}: {exc}") from None
    recorder = Recorder()
    ctx = RunContext(
        spec=run.spec,
        plugins=plugins,
        cache=ArtefactCache(run.cache_dir),
        store=recorder,
        run_id=run.run_id,
        # a task sees only the GPU Ray gave it, as its first CUDA device
        device=torch.device("cuda" if run.device.startswith("cuda") else run.device),
        progress=NullProgress(),
        provenance=provenance,
        on_cell=lambda row: None,
        force=run.force,
    )
    run_group(ctx, dataset, model, cells)
    return recorder


def replay(ctx: Any, recorded: Recorder) -> None:
    """Write a worker's records into the driver's store, counting and reporting each cell."""
    from harness.pipeline import record

    for cell, items in recorded.galleries:
        ctx.store.write_gallery(ctx.run_id, cell, items)
    for row, samples, curves in recorded.cells:
        record(ctx, row, samples, curves)
