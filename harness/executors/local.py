"""The local executor: groups run one after another in this process."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from harness.planner import Cell


class LocalExecutor:
    """Run groups sequentially in-process (CUDA when the run's device is CUDA)."""

    name = "local"

    def run(
        self,
        groups: Sequence[tuple[str, str, Sequence[Cell]]],
        work: Callable[[str, str, Sequence[Cell]], None],
    ) -> None:
        """Run every group in order."""
        for dataset, model, cells in groups:
            work(dataset, model, cells)
