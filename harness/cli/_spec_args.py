"""Arguments shared by the commands that read a spec: ``--set`` overrides and ``-p no:NAME``."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def add_spec_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--set KEY=VALUE`` (repeatable) and ``-p no:NAME`` (repeatable)."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a spec value, e.g. --set dataset.params.root=/data/chest_xray",
    )
    add_block_argument(parser)


def add_block_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``-p no:NAME`` (repeatable): leave out the plugin with that entry-point name."""
    parser.add_argument(
        "-p",
        dest="plugins",
        action="append",
        default=[],
        metavar="no:NAME",
        help="block a plugin by its entry-point name, e.g. -p no:builtins",
    )


def blocked_plugins(values: list[str]) -> tuple[str, ...]:
    """Return the plugin names blocked with ``-p no:NAME``.

    Logs a warning for an entry not of the form ``no:NAME`` and for a name
    that is neither the core plugin nor an installed ``harness`` entry point;
    such entries block nothing.
    """
    from importlib import metadata

    from harness.errors import did_you_mean
    from harness.plugin_manager import CORE_PLUGIN, GROUP

    known = {CORE_PLUGIN, *(ep.name for ep in metadata.entry_points(group=GROUP))}
    blocked = []
    for value in values:
        if not value.startswith("no:"):
            log.warning(
                "-p %s: ignored - expected the form no:NAME (e.g. -p no:%s), got %r",
                value,
                value,
                value,
            )
            continue
        name = value[3:]
        if name not in known:
            log.warning(
                "-p %s: no plugin has the entry-point name %r, so nothing is blocked.%s",
                value,
                name,
                did_you_mean(name, known),
            )
        blocked.append(name)
    return tuple(blocked)
