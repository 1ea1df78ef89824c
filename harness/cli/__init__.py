"""The ``harness`` command: run, validate, ls, describe, report, stability and check.

Sub-command modules are imported only when used, so ``harness --help`` stays
fast and imports no deep-learning library.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": (
        "harness.cli.run",
        "run a benchmark spec and write its leaderboard",
        "example: harness run specs/quickstart.yaml -o leaderboards/quickstart\n"
        "         harness run specs/quickstart.yaml --seeds 0 1 2   # and compare the rankings",
    ),
    "validate": (
        "harness.cli.validate",
        "check a spec and report every problem",
        "example: harness validate specs/pneumonia.yaml",
    ),
    "ls": (
        "harness.cli.ls",
        "list discovered plugins with their distribution and version",
        "example: harness ls explainers",
    ),
    "report": (
        "harness.cli.report",
        "rebuild the leaderboard files from a results store",
        "example: harness report leaderboards/quickstart",
    ),
    "stability": (
        "harness.cli.stability",
        "compare explainer rankings across runs (e.g. training seeds)",
        "example: harness stability leaderboards/quickstart leaderboards/quickstart_seed1 \\\n"
        "             -o leaderboards/quickstart_stability",
    ),
    "check": (
        "harness.cli.check",
        "run the conformance kit on a registered plugin",
        "example: harness check captum.grad_cam",
    ),
    "describe": (
        "harness.cli.describe",
        "show one plugin's summary, tags, citation and parameters",
        "example: harness describe faithfulness.road\n"
        "         harness describe --catalogue --markdown > docs/metrics.md",
    ),
}

INTERRUPTED = "interrupted: completed stages are cached; rerun the same command to resume"


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser; each sub-command adds its own arguments."""
    parser = argparse.ArgumentParser(
        prog="harness",
        description="Benchmark explanation methods for medical models: faithfulness, "
        "localisation, sanity checks, robustness and complexity.",
        epilog="example: harness run specs/quickstart.yaml",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text, example) in COMMANDS.items():
        p = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=example,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.set_defaults(_module=module)
        importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``harness`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * args.verbose
    logging.basicConfig(
        level=max(level, logging.DEBUG), format="%(levelname)s %(name)s: %(message)s"
    )
    if not getattr(args, "_module", None):
        parser.print_help()
        return 2
    from harness.errors import HarnessError

    try:
        status: int = importlib.import_module(args._module).execute(args)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed early
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return status
