"""The hook surface of the harness: what a plugin module may implement.

A plugin distribution declares ``[project.entry-points.harness]`` pointing at a
module holding ``@hookimpl`` functions. The four registry hooks return lazy
targets, so nothing heavy is imported before a plugin is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("harness")
hookimpl = pluggy.HookimplMarker("harness")


@hookspec
def harness_datasets() -> Mapping[str, str]:  # type: ignore[empty-body]
    """Return the datasets this plugin provides, as name -> ``"module:Class"``.

    Called once, after all plugins are loaded. Names must be unique across plugins.
    """


@hookspec
def harness_models() -> Mapping[str, str]:  # type: ignore[empty-body]
    """Return the models this plugin provides, as name -> ``"module:Class"``."""


@hookspec
def harness_explainers() -> Mapping[str, str]:  # type: ignore[empty-body]
    """Return the explainers this plugin provides, as name -> ``"module:Class"``."""


@hookspec
def harness_metrics() -> Mapping[str, str]:  # type: ignore[empty-body]
    """Return the metrics this plugin provides, as name -> ``"module:Class"``."""


@hookspec
def harness_addoption(parser: Any) -> None:
    """Add options to the ``harness run`` argument parser (an ``argparse`` parser).

    Called when the CLI builds its parser; the parsed values reach
    ``harness_run_finished`` through the run summary's ``options``.
    """


@hookspec
def harness_cell_finished(record: Mapping[str, Any]) -> None:
    """Receive one result record as soon as its cell is stored (reporters, sinks)."""


@hookspec
def harness_run_finished(summary: Mapping[str, Any]) -> None:
    """Receive the run summary (counts of done, skipped and failed cells, output paths)."""
