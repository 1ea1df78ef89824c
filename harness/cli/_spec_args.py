"""Arguments shared by the commands that read a spec: ``--set`` overrides and ``-p no:NAME``."""

from __future__ import annotations

import argparse


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
    parser.add_argument(
        "-p",
        dest="plugins",
        action="append",
        default=[],
        metavar="no:NAME",
        help="block a plugin by its entry-point name, e.g. -p no:builtins",
    )


def blocked_plugins(values: list[str]) -> tuple[str, ...]:
    """Return the plugin names blocked with ``-p no:NAME``."""
    return tuple(v[3:] for v in values if v.startswith("no:"))
