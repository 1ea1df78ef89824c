"""``harness check NAME``: run the conformance kit on a registered plugin."""

from __future__ import annotations

import argparse

from harness.cli._spec_args import add_block_argument, blocked_plugins

KINDS = ("datasets", "models", "explainers", "metrics")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``check`` arguments."""
    parser.add_argument("name", help="registered plugin name, e.g. captum.grad_cam")
    parser.add_argument(
        "--kind", choices=KINDS, default=None, help="plugin kind when a name is ambiguous"
    )
    add_block_argument(parser)


def _require_registered(name: str, blocked: tuple[str, ...]) -> None:
    """Raise a PluginError naming the closest registered names when no registry holds ``name``."""
    from harness.errors import PluginError, did_you_mean
    from harness.plugin_manager import get_registries

    regs = get_registries(blocked)
    if any(name in regs.kind(k) for k in KINDS):
        return
    pool = [n for k in KINDS for n in regs.kind(k).names()]
    raise PluginError(
        f"harness check: unknown plugin {name!r} - expected a registered dataset, "
        f"model, explainer or metric.{did_you_mean(name, pool)}",
        plugin=name,
    )


def execute(args: argparse.Namespace) -> int:
    """Print one line per check; exit 1 when a check failed."""
    from harness.testing import run_checks_for_name

    blocked = blocked_plugins(args.plugins)
    if args.kind is None:
        _require_registered(args.name, blocked)
    results = run_checks_for_name(args.kind, args.name, blocked)
    failed = 0
    for r in results:
        status = "PASS" if r.passed else "FAIL"
        failed += not r.passed
        print(f"{status} {r.name}" + (f": {r.message}" if r.message and not r.passed else ""))
    print(f"{args.name}: {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0
