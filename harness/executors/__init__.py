"""Executors run the independent (dataset, model) groups of a plan.

The planner and the store are the same for every executor; an executor only
decides where and in which order groups run. ``local`` runs them in this
process; ``ray`` runs them as Ray tasks (:mod:`harness.executors.ray`), which
rebuild the plugins from a :class:`RemoteRun` and send their results back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from harness.errors import SpecError, did_you_mean
from harness.executors.local import LocalExecutor
from harness.executors.remote import RemoteRun
from harness.planner import Cell

if TYPE_CHECKING:
    from harness.pipeline import RunContext

GroupTask = tuple[str, str, Sequence[Cell]]


class Executor(Protocol):
    """Runs every group of a run and records its cells in ``ctx``'s store."""

    name: str

    def run(self, groups: Sequence[GroupTask], ctx: RunContext, remote: RemoteRun) -> None:
        """Run every group (in ``ctx``, or elsewhere from ``remote``); never raises for a cell."""


def _ray() -> Executor:
    from harness.executors.ray import RayExecutor

    return RayExecutor()


EXECUTORS: dict[str, Callable[[], Executor]] = {"local": LocalExecutor, "ray": _ray}


def get_executor(name: str) -> Executor:
    """Return the executor called ``name``."""
    if name not in EXECUTORS:
        raise SpecError("--executor", name, f"unknown executor.{did_you_mean(name, EXECUTORS)}")
    return EXECUTORS[name]()


__all__ = ["EXECUTORS", "Executor", "GroupTask", "LocalExecutor", "RemoteRun", "get_executor"]
