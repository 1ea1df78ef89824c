"""Run one (dataset, model) group in another process and hand its results back.

A distributed executor cannot send the run's context (an open SQLite store, a
progress bar) to a worker. It sends a :class:`RemoteRun` instead: what the
worker needs to rebuild the same plugins from the spec. The worker runs the
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
from harness.store import ResultRow


@dataclass(frozen=True)
class RemoteRun:
    """What a worker needs to run groups of this run (picklable)."""

    spec_path: Path
    overrides: tuple[str, ...]
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
    """Rebuild the run's plugins from its spec and run one group; return what it recorded.

    Runs in the worker process, with as many torch threads as the driver has
    (training values depend on the thread count).
    """
    from harness.pipeline import RunContext, run_group
    from harness.plugin_manager import get_registries
    from harness.progress import NullProgress
    from harness.runner import instantiate
    from harness.spec import load_spec
    from harness.stages import ArtefactCache

    torch.set_num_threads(run.threads)
    torch.set_grad_enabled(True)
    registries = get_registries(run.blocked)
    spec = load_spec(run.spec_path, registries, run.overrides)
    plugins, provenance, _ = instantiate(spec, registries)
    recorder = Recorder()
    ctx = RunContext(
        spec=spec,
        plugins=plugins,
        cache=ArtefactCache(run.cache_dir),
        store=recorder,
        run_id=run.run_id,
        device=torch.device(run.device),
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
