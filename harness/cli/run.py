"""``harness run SPEC``: plan, execute, store and report a benchmark."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from harness.cli._spec_args import add_spec_arguments, blocked_plugins


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
    add_spec_arguments(parser)


def execute(args: argparse.Namespace) -> int:
    """Run the spec; exit 1 when any cell failed."""
    from harness.runner import RunOptions, run_benchmark

    summary = run_benchmark(
        RunOptions(
            spec_path=args.spec,
            output=args.output,
            cache_dir=args.cache_dir,
            force=args.force,
            executor=args.executor,
            device=args.device,
            progress=not args.no_progress,
            blocked=blocked_plugins(args.plugins),
            overrides=tuple(args.overrides),
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
        return 1
    return 0
