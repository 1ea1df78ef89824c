"""Executors run the independent (dataset, model) groups of a plan.

The planner and the store are the same for every executor; an executor only
decides where and in which order groups run. ``local`` runs them in this
process; a distributed executor (Ray) implements the same protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from harness.errors import SpecError, did_you_mean
from harness.executors.local import LocalExecutor
from harness.planner import Cell

GroupTask = tuple[str, str, Sequence[Cell]]


class Executor(Protocol):
    """Runs ``work(dataset, model, cells)`` for every group."""

    name: str

    def run(
        self, groups: Sequence[GroupTask], work: Callable[[str, str, Sequence[Cell]], None]
    ) -> None:
        """Run every group; ``work`` records its own results and never raises."""


EXECUTORS: dict[str, Callable[[], Executor]] = {"local": LocalExecutor}


def get_executor(name: str) -> Executor:
    """Return the executor called ``name``."""
    if name not in EXECUTORS:
        raise SpecError("--executor", name, f"unknown executor.{did_you_mean(name, EXECUTORS)}")
    return EXECUTORS[name]()


__all__ = ["EXECUTORS", "Executor", "GroupTask", "LocalExecutor", "get_executor"]
