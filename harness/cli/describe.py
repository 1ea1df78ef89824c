"""``harness describe NAME``: the reference page of one plugin, or the metric catalogue."""

from __future__ import annotations

import argparse
import sys

from harness.cli._spec_args import add_block_argument, blocked_plugins


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``describe`` arguments."""
    parser.add_argument(
        "name", nargs="?", help="registered plugin name of any kind, e.g. faithfulness.road"
    )
    parser.add_argument(
        "--markdown", action="store_true", help="print Markdown instead of plain text"
    )
    parser.add_argument(
        "--catalogue",
        action="store_true",
        help="describe every metric of the core harness distribution, grouped by kind "
        "(with --markdown: docs/metrics.md)",
    )
    add_block_argument(parser)


def execute(args: argparse.Namespace) -> int:
    """Print the page of ``args.name`` (or the catalogue); unknown names raise a PluginError."""
    from harness.errors import PluginError
    from harness.plugin_docs import describe, metric_catalogue
    from harness.plugin_manager import get_registries

    if bool(args.name) == bool(args.catalogue):
        raise PluginError(
            "harness describe: expected a plugin name or --catalogue (not both), "
            f"got name={args.name!r}, --catalogue={args.catalogue}."
        )
    regs = get_registries(blocked_plugins(args.plugins))
    if args.catalogue:
        text = metric_catalogue(regs, markdown=args.markdown)
    else:
        text = describe(regs, args.name, markdown=args.markdown)
    sys.stdout.write(text)
    return 0
