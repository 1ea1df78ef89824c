"""Run a spec: validate, instantiate, plan, execute, compare, report.

Planning, execution and storage stay apart: the planner is pure, an executor
runs groups, the store records results, the reports are rebuilt from the store.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
from dataclasses import asdict, dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any

import torch

from harness import __version__
from harness.contracts import DatasetInfo, MetricKind
from harness.device import resolve_device
from harness.errors import PluginError
from harness.executors import RemoteRun, get_executor
from harness.pipeline import RunContext, record
from harness.planner import NO_EXPLAINER, Cell, Plan, Plugins, plan
from harness.plugin_manager import Registries, get_registries
from harness.progress import NullProgress, ProgressSink, RichProgress
from harness.reports import write_reports
from harness.spec import Spec, load_spec
from harness.stages import ArtefactCache, prepare_folder
from harness.stats import paired_tests
from harness.store import DB_NAME, ResultRow, Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOptions:
    """How to run a spec (what the ``harness run`` flags set)."""

    spec_path: Path
    output: Path | None = None
    cache_dir: Path | None = None
    force: bool = False
    executor: str = "local"
    device: str | None = None
    progress: bool = True
    blocked: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunSummary:
    """What a run did: counts of cells by status and the files it wrote."""

    benchmark: str
    output: Path
    ok: int
    skipped: int
    failed: int
    files: tuple[Path, ...]

    @property
    def total(self) -> int:
        """All cells, whatever their status."""
        return self.ok + self.skipped + self.failed


def _git_hash() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def _device(options: RunOptions, spec: Spec) -> torch.device:
    """Resolve the device of the run; a refused name is reported against the spec file or --device."""
    if options.device:
        return resolve_device(options.device, where="--device")
    return resolve_device(spec.device, where=str(options.spec_path), key="device")


def instantiate(
    spec: Spec, regs: Registries
) -> tuple[Plugins, dict[str, str], dict[str, Exception]]:
    """Build every plugin; returns plugins, provenance strings, and datasets that failed."""
    provenance: dict[str, str] = {}
    built: dict[str, dict[str, Any]] = {}
    for kind in ("datasets", "models", "explainers", "metrics"):
        built[kind] = {}
        for p in getattr(spec, kind):
            cls = regs.kind(kind).get(p.name)
            entry = regs.kind(kind).entry(p.name)
            built[kind][p.key] = cls(**p.params)
            provenance[f"{kind[:-1]}:{p.key}"] = (
                f"{p.name} v{cls.version} ({entry.distribution} {entry.dist_version})"
            )
    datasets: dict[str, tuple[DatasetInfo, Any]] = {}
    broken: dict[str, Exception] = {}
    for key, ds in built["datasets"].items():
        try:
            datasets[key] = (ds.info(), ds)
        except Exception as exc:  # a broken dataset fails its own cells
            broken[key] = exc
    plugins = Plugins(datasets, built["models"], built["explainers"], built["metrics"])
    return plugins, provenance, broken


def _broken_dataset_cells(spec: Spec, plugins: Plugins, dkey: str) -> list[Cell]:
    cells = []
    for mkey in plugins.models:
        for metric_key, metric in plugins.metrics.items():
            if metric.get_tags().kind is MetricKind.CLASSIFICATION:
                cells.append(Cell(dkey, mkey, NO_EXPLAINER, metric_key))
            else:
                cells.extend(Cell(dkey, mkey, e, metric_key) for e in plugins.explainers)
    return cells


def store_comparisons(store: Store, run_id: int) -> None:
    """Paired Wilcoxon tests between explainers, per dataset x model x metric.

    Rows are paired by (sample, target) and tested per sample (a multi-label
    image's rows are averaged first: see :func:`harness.stats.paired_tests`).
    """
    rows = store.query(
        "SELECT r.dataset, r.model, r.metric, r.explainer, r.higher_is_better, s.sample_id, s.target, s.value "
        "FROM results r JOIN sample_scores s USING (run_id, dataset, model, explainer, metric) "
        "WHERE r.run_id = ? AND r.status = 'ok'",
        (run_id,),
    )
    groups: dict[tuple[str, str, str], dict[str, dict[tuple[str, int], float]]] = {}
    direction: dict[tuple[str, str, str], bool] = {}
    for r in rows:
        g = (r["dataset"], r["model"], r["metric"])
        groups.setdefault(g, {}).setdefault(r["explainer"], {})[(r["sample_id"], r["target"])] = r[
            "value"
        ]
        direction[g] = bool(r["higher_is_better"])
    out = []
    for g, scores in sorted(groups.items()):
        if len(scores) < 2:
            continue
        for c in paired_tests(scores, direction[g], sample=itemgetter(0)):
            out.append(
                (*g, c.a, c.b, c.n, c.statistic, c.p_value, c.p_adjusted, c.better, "wilcoxon+holm")
            )
    store.write_comparisons(run_id, out)


def _record_plan_outcomes(
    ctx: RunContext, planned: Plan, broken: dict[str, Exception], spec: Spec
) -> None:
    from harness.pipeline.context import fail_cells, make_row

    for s in planned.skipped:
        record(ctx, make_row(ctx, s.cell, "skipped", reason=s.reason))
    for dkey, exc in broken.items():
        fail_cells(ctx, _broken_dataset_cells(spec, ctx.plugins, dkey), exc, f"dataset {dkey}")


def _execute(
    ctx: RunContext, planned: Plan, broken: dict[str, Exception], options: RunOptions
) -> None:
    _record_plan_outcomes(ctx, planned, broken, ctx.spec)
    groups = [(d, m, cells) for (d, m), cells in planned.groups().items()]
    remote = RemoteRun(
        spec=ctx.spec,
        blocked=tuple(options.blocked),
        cache_dir=ctx.cache.root.resolve(),
        device=str(ctx.device),
        run_id=ctx.run_id,
        force=ctx.force,
        threads=torch.get_num_threads(),
    )
    get_executor(options.executor).run(groups, ctx, remote)


def default_output(spec: Spec) -> Path:
    """Return the output folder of a run without ``-o``: ``leaderboards/<benchmark>``."""
    return Path("leaderboards") / spec.benchmark


def run_benchmark(options: RunOptions, registries: Registries | None = None) -> RunSummary:
    """Run the spec at ``options.spec_path`` and write its leaderboard."""
    if registries is not None and options.executor != "local":
        raise PluginError(
            f"executor {options.executor!r}: its workers find plugins through the installed "
            "entry points, so plugins passed as registries= would be missing there - expected "
            "executor='local' with registries=, or the plugins installed as a distribution"
        )
    regs = registries or get_registries(options.blocked)
    spec = load_spec(options.spec_path, regs, options.overrides)
    out = Path(options.output or default_output(spec))
    device = _device(options, spec)
    prepare_folder(out, "--output" if options.output else "output folder")
    cache_dir = options.cache_dir or out / ".cache"
    prepare_folder(cache_dir, "--cache-dir" if options.cache_dir else "stage cache")
    plugins, provenance, broken = instantiate(spec, regs)
    planned = plan(plugins)
    n_broken = sum(len(_broken_dataset_cells(spec, plugins, d)) for d in broken)
    total = len(planned.cells) + len(planned.skipped) + n_broken
    store = Store(out / DB_NAME)
    run_id = store.start_run(
        {
            "benchmark": spec.benchmark,
            "spec_file": str(options.spec_path),
            "spec_hash": spec.spec_hash,
            "harness_version": __version__,
            "git_hash": _git_hash(),
            "device": str(device),
            "confidence": spec.bootstrap.confidence,
        }
    )
    counts = {"ok": 0, "skipped": 0, "failed": 0}

    def on_cell(row: ResultRow) -> None:
        counts[row.status] += 1
        regs.manager.hook.harness_cell_finished(record=asdict(row))

    torch.set_grad_enabled(True)
    with contextlib.ExitStack() as stack:
        progress: ProgressSink = (
            stack.enter_context(RichProgress(total)) if options.progress else NullProgress()
        )
        ctx = RunContext(
            spec=spec,
            plugins=plugins,
            cache=ArtefactCache(cache_dir),
            store=store,
            run_id=run_id,
            device=device,
            progress=progress,
            provenance=provenance,
            on_cell=on_cell,
            force=options.force,
        )
        _execute(ctx, planned, broken, options)
    store_comparisons(store, run_id)
    store.finish_run(run_id, "failed" if counts["failed"] else "ok")
    files = write_reports(store, out)
    store.close()
    summary = RunSummary(
        spec.benchmark, out, counts["ok"], counts["skipped"], counts["failed"], tuple(files)
    )
    regs.manager.hook.harness_run_finished(summary={**asdict(summary), "options": options.options})
    return summary
