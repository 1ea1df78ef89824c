"""The local executor: groups run one after another in this process."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from harness.planner import Cell

if TYPE_CHECKING:
    from harness.executors.remote import RemoteRun
    from harness.pipeline import RunContext


class LocalExecutor:
    """Run groups sequentially in-process (CUDA when the run's device is CUDA)."""

    name = "local"

    def run(
        self,
        groups: Sequence[tuple[str, str, Sequence[Cell]]],
        ctx: RunContext,
        remote: RemoteRun,
    ) -> None:
        """Run every group in order, in ``ctx`` (``remote`` is not needed here)."""
        from harness.pipeline import run_group

        for dataset, model, cells in groups:
            run_group(ctx, dataset, model, cells)
