"""``harness validate SPEC``: report every problem of a spec, plan it without running."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.cli._spec_args import add_spec_arguments, blocked_plugins


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``validate`` arguments."""
    parser.add_argument("spec", type=Path, help="benchmark spec (YAML)")
    add_spec_arguments(parser)


def execute(args: argparse.Namespace) -> int:
    """Print the problems (exit 2) or a summary of the plan (exit 0)."""
    from harness.plugin_manager import get_registries
    from harness.spec import validate_spec

    regs = get_registries(blocked_plugins(args.plugins))
    spec, problems = validate_spec(args.spec, regs, args.overrides)
    if spec is None:
        print(f"{args.spec}: {len(problems)} problem(s)", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        return 2
    from harness.planner import plan
    from harness.runner import instantiate

    plugins, _, broken = instantiate(spec, regs)
    planned = plan(plugins)
    print(
        f"{args.spec}: ok - benchmark {spec.benchmark!r}: {len(spec.datasets)} dataset(s), "
        f"{len(spec.models)} model(s), {len(spec.explainers)} explainer(s), {len(spec.metrics)} metric(s); "
        f"{len(planned.cells)} cell(s) to run, {len(planned.skipped)} skipped"
    )
    reasons: dict[str, int] = {}
    for s in planned.skipped:
        reasons[s.reason] = reasons.get(s.reason, 0) + 1
    for reason, count in sorted(reasons.items()):
        print(f"  skipped x{count}: {reason}")
    for key, exc in broken.items():
        print(f"  dataset {key!r} cannot be read: {exc}", file=sys.stderr)
    return 2 if broken else 0
