"""Progress reporting: a rich progress bar with the current stage, its own progress and ETAs.

On a terminal the bar has two lines: the cells finished (with the stage now
running) and the current stage's own progress (steps trained, rows explained;
a pulsing bar with the stage's elapsed time while a stage reports nothing).
When stderr is not a terminal (CI, ``nohup``) rich draws nothing until the end,
so the bar logs a plain status line every ``log_every`` seconds instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

log = logging.getLogger(__name__)

SUBSTEP_PREFIX = "  └ "


class ProgressSink(Protocol):
    """What the pipeline reports to: the stage it is in, its progress and finished units."""

    def stage(self, description: str) -> None:
        """Show the stage now running."""

    def substep(self, done: int, total: int, unit: str = "") -> None:
        """Show that ``done`` of the current stage's ``total`` units (steps, rows) are finished."""

    def advance(self, units: int = 1) -> None:
        """Count finished units (cells or stages)."""


class NullProgress:
    """A sink that shows nothing (library use, tests)."""

    def stage(self, description: str) -> None:
        """Ignore the stage."""

    def substep(self, done: int, total: int, unit: str = "") -> None:
        """Ignore the stage's progress."""

    def advance(self, units: int = 1) -> None:
        """Ignore the units."""


def _duration(seconds: float) -> str:
    """Format seconds as ``41s``, ``2m17s`` or ``1h02m``."""
    s = int(round(seconds))
    if s < 120:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class RichProgress:
    """A rich progress bar on stderr: stage, bar, done/total, elapsed, ETA, and the stage's progress.

    Parameters
    ----------
    total
        Number of cells of the run.
    console
        Where to draw (default: stderr).
    log_every
        Seconds between plain status lines when the console is not interactive.
    clock
        Monotonic time source of the plain status lines (tests pass a fake one).
    """

    def __init__(
        self,
        total: int,
        *,
        console: Console | None = None,
        log_every: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        console = console or Console(stderr=True)
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._task = self._progress.add_task("planning", total=total)
        self._sub: TaskID | None = None
        self._plain = not (console.is_interactive or console.is_jupyter)
        self._console = console
        self._log_every = log_every
        self._clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._old_level = logging.NOTSET
        self._cells, self._total = 0, total
        self._description = "planning"
        self._done, self._of, self._unit = 0, 0, ""
        self._started = self._last_line = clock()
        self._closed = False

    @property
    def plain(self) -> bool:
        """Whether status lines are logged instead of drawn (stderr is not a terminal)."""
        return self._plain

    def __enter__(self) -> RichProgress:
        self._progress.start()
        if self._plain:
            self._old_level = log.level
            if not log.isEnabledFor(logging.INFO):  # the CLI's default level is WARNING
                log.setLevel(logging.INFO)
            self._last_line = self._clock()
            self._stop.clear()
            self._thread = threading.Thread(target=self._beat, name="harness-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            log.setLevel(self._old_level)
        if self._sub is not None:
            self._progress.remove_task(self._sub)
            self._sub = None
        self._progress.stop()

    def stage(self, description: str) -> None:
        """Show the stage now running; its own progress line starts again."""
        self._progress.update(self._task, description=description)
        with self._lock:
            self._description, self._done, self._of, self._unit = description, 0, 0, ""
            self._started, self._closed = self._clock(), False
        if self._plain:
            return
        if self._sub is not None:
            self._progress.remove_task(self._sub)
        self._sub = self._progress.add_task(SUBSTEP_PREFIX + "this stage", total=None)

    def substep(self, done: int, total: int, unit: str = "") -> None:
        """Show that ``done`` of the current stage's ``total`` units (steps, rows) are finished."""
        with self._lock:
            self._done, self._of, self._unit = done, total, unit
            finished = total > 0 and done >= total and not self._closed
            if finished:
                self._closed = True
        if not self._plain:
            if self._sub is not None:
                label = SUBSTEP_PREFIX + (unit or "this stage")
                self._progress.update(self._sub, completed=done, total=total, description=label)
            return
        now = self._clock()
        if finished and now - self._started >= self._log_every:
            self._emit(f"{self._status(now)}, done", now)

    def advance(self, units: int = 1) -> None:
        """Count finished units."""
        self._progress.advance(self._task, units)
        with self._lock:
            self._cells += units

    def heartbeat(self) -> None:
        """Log a status line if the last one is ``log_every`` seconds old (plain mode only)."""
        if not self._plain:
            return
        now = self._clock()
        if now - self._last_line >= self._log_every:
            self._emit(self._status(now), now)

    def _beat(self) -> None:
        while not self._stop.wait(min(1.0, max(0.05, self._log_every / 4))):
            self.heartbeat()

    def _status(self, now: float) -> str:
        with self._lock:
            cells, desc, done, of, unit = (
                self._cells,
                self._description,
                self._done,
                self._of,
                self._unit,
            )
            elapsed = now - self._started
        head = f"[{cells}/{self._total} cells] {desc}"
        if of <= 0:
            return f"{head}: running for {_duration(elapsed)}"
        text = f"{head}: {done}/{of}{' ' + unit if unit else ''} ({100 * done // of}%)"
        text += f", {_duration(elapsed)} elapsed"
        if 0 < done < of:
            text += f", eta {_duration(elapsed / done * (of - done))}"
        return text

    def _emit(self, line: str, now: float) -> None:
        with self._lock:
            self._last_line = now
        if log.hasHandlers():
            log.info("%s", line)
        else:  # no logging configured (library use): write the line itself
            self._console.print(line, markup=False, highlight=False, soft_wrap=True)
