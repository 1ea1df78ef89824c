"""Progress of the work inside a stage, reported from code deep below the pipeline.

The metric engine's chunk loop and the re-explaining metrics report how many
inputs they have evaluated; the pipeline routes those reports to its progress
bar for the metric being scored (:func:`reporting`). Outside such a block
(library use, ``harness.score``) a report costs one context-variable lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

Report = Callable[[int, int], None]

_REPORT: ContextVar[Report | None] = ContextVar("harness_substep_report", default=None)


@contextmanager
def reporting(report: Report) -> Iterator[None]:
    """Send every :func:`report_substep` inside the block to ``report(done, total)``."""
    token = _REPORT.set(report)
    try:
        yield
    finally:
        _REPORT.reset(token)


def report_substep(done: int, total: int) -> None:
    """Report that ``done`` of ``total`` inputs of the current piece of work are evaluated."""
    report = _REPORT.get()
    if report is not None:
        report(done, total)


@contextmanager
def within(start: int, total: int) -> Iterator[None]:
    """Report the block's substeps as ``start + done`` of ``total``: one pass of a larger count.

    A metric that evaluates its inputs in several passes (one per randomised
    layer, per group of rows, per block of steps) counts them all against one
    total, so its progress line advances once instead of restarting each pass.
    """
    outer = _REPORT.get()
    if outer is None:
        yield
        return
    with reporting(lambda done, _total: outer(start + done, total)):
        yield
