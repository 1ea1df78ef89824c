"""Progress reporting: a rich progress bar with the current stage and an ETA."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class ProgressSink(Protocol):
    """What the pipeline reports to: the stage it is in and finished units."""

    def stage(self, description: str) -> None:
        """Show the stage now running."""

    def advance(self, units: int = 1) -> None:
        """Count finished units (cells or stages)."""


class NullProgress:
    """A sink that shows nothing (library use, tests)."""

    def stage(self, description: str) -> None:
        """Ignore the stage."""

    def advance(self, units: int = 1) -> None:
        """Ignore the units."""


class RichProgress:
    """A rich progress bar on stderr: stage, bar, done/total, elapsed, ETA."""

    def __init__(self, total: int, *, console: Console | None = None) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
            transient=False,
        )
        self._task = self._progress.add_task("planning", total=total)

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def stage(self, description: str) -> None:
        """Show the stage now running."""
        self._progress.update(self._task, description=description)

    def advance(self, units: int = 1) -> None:
        """Count finished units."""
        self._progress.advance(self._task, units)
