"""``harness run SPEC``: plan, execute, store and report a benchmark (once per seed with ``--seeds``)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from harness.cli._spec_args import add_spec_arguments, blocked_plugins

if TYPE_CHECKING:
    from harness.runner import RunSummary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``run`` arguments."""
    parser.add_argument("spec", type=Path, help="benchmark spec (YAML)")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="output folder (default: leaderboards/<benchmark>)",
    )
    parser.add_argument(
        "--force", action="store_true", help="recompute every stage instead of using the cache"
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="stage cache (default: <output>/.cache)"
    )
    parser.add_argument(
        "--device", default=None, help="override the spec's device: auto, cpu, cuda, cuda:N"
    )
    parser.add_argument(
        "--executor",
        default="local",
        choices=("local", "ray"),
        help="where groups run: local (this process, default) or ray (Ray tasks on this machine, "
        "or the cluster at RAY_ADDRESS; needs `pip install ray`)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=None,
        metavar="N",
        help="run the spec once per seed (at least two: the spec's own seed writes the output "
        "folder, seed N writes <output>_seedN) and compare the runs' explainer rankings in "
        "<output>_stability, as `harness stability` does",
    )
    add_spec_arguments(parser)


def execute(args: argparse.Namespace) -> int:
    """Run the spec (once per seed with ``--seeds``); exit 1 when any cell failed."""
    if args.seeds is not None:
        return _run_seeds(args)
    summary = _run(args, args.output, (), blocked_plugins(args.plugins))
    return 1 if summary.failed else 0


def _run(
    args: argparse.Namespace,
    output: Path | None,
    overrides: tuple[str, ...],
    blocked: tuple[str, ...],
) -> RunSummary:
    """Run the spec with ``overrides`` added, into ``output``; print its summary."""
    from harness.runner import RunOptions, run_benchmark

    summary = run_benchmark(
        RunOptions(
            spec_path=args.spec,
            output=output,
            cache_dir=args.cache_dir,
            force=args.force,
            executor=args.executor,
            device=args.device,
            progress=not args.no_progress,
            blocked=blocked,
            overrides=(*args.overrides, *overrides),
        )
    )
    print(
        f"{summary.benchmark}: {summary.total} cells: {summary.ok} ok, {summary.skipped} skipped, "
        f"{summary.failed} failed -> {summary.output}/leaderboard.md"
    )
    for path in summary.files:
        print(f"  wrote {path}")
    if summary.failed:
        print(
            f"{summary.failed} cell(s) failed; see the leaderboard for their errors and "
            f"`harness report {shlex.quote(str(summary.output))} --tracebacks` for their tracebacks",
            file=sys.stderr,
        )
    return summary


def _run_seeds(args: argparse.Namespace) -> int:
    """Run the spec once per seed, then write the stability report of the runs."""
    from harness.cli.stability import print_summary
    from harness.errors import SpecError
    from harness.plugin_manager import get_registries
    from harness.reports.stability import load_runs, stability, write_stability
    from harness.runner import default_output
    from harness.spec import load_spec

    seeds = list(dict.fromkeys(args.seeds))
    if len(seeds) < 2:
        raise SpecError(
            str(args.spec), "--seeds", f"expected at least two different seeds, got {args.seeds}"
        )
    if any(o.split("=", 1)[0].strip() == "seed" for o in args.overrides):
        raise SpecError(
            str(args.spec), "--seeds", "give the seeds with --seeds only, not also --set seed="
        )
    blocked = blocked_plugins(args.plugins)
    spec = load_spec(args.spec, get_registries(blocked), args.overrides)
    base = args.output or default_output(spec)
    outputs = [base if s == spec.seed else base.with_name(f"{base.name}_seed{s}") for s in seeds]
    failed = 0
    for seed, output in zip(seeds, outputs, strict=True):
        failed += _run(args, output, (f"seed={seed}",), blocked).failed
    runs = load_runs(outputs)
    result = stability(runs)
    for path in write_stability(result, runs, base.with_name(f"{base.name}_stability")):
        print(f"wrote {path}")
    print_summary(result)
    return 1 if failed else 0
