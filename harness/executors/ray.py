"""The Ray executor: groups run as Ray tasks, on this machine or on a cluster.

``harness run SPEC --executor ray`` starts a local Ray instance (as many CPUs
as the machine has), or joins the cluster named by ``RAY_ADDRESS``. Each
(dataset, model) group is one task that builds the plugins of the spec the
driver planned (:mod:`harness.executors.remote`), uses the same stage cache folder and sends
its results back to the driver, which writes the store and the reports. A
task asks for as many CPUs as the driver's torch threads (at most one node's
CPUs) and runs with that many threads, so its values equal a local run's; on
CUDA it asks for one GPU. On a cluster, the data and the cache folder must
be at the same paths on every node (a shared file system). A task
that dies (a worker killed, out of memory) fails its group's cells.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from harness.errors import PluginError
from harness.executors.remote import RemoteRun, replay, run_group_here
from harness.planner import Cell

if TYPE_CHECKING:
    from harness.pipeline import RunContext

log = logging.getLogger(__name__)


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise PluginError(
            "--executor ray: Ray is not installed - expected `pip install 'harness[ray]'` "
            "(or `pip install ray`)"
        ) from exc
    return ray


def _cpus_per_task(ray: Any, threads: int) -> int:
    """Return the driver's thread count, at most the CPUs of the largest live node."""
    largest = max(
        (node["Resources"].get("CPU", 0) for node in ray.nodes() if node.get("Alive")),
        default=1,
    )
    return max(1, min(threads, int(largest)))


class RayExecutor:
    """Run groups as Ray tasks and replay their results into this run's store."""

    name = "ray"

    def run(
        self, groups: Sequence[tuple[str, str, Sequence[Cell]]], ctx: RunContext, remote: RemoteRun
    ) -> None:
        """Submit every group, then record each one's cells as it finishes."""
        from harness.pipeline.context import fail_cells

        ray = _ray()
        started = not ray.is_initialized()
        if started:
            address = os.environ.get("RAY_ADDRESS")
            ray.init(
                address=address,
                num_cpus=None if address else os.cpu_count(),
                include_dashboard=False,
                logging_level=logging.WARNING,
            )
        try:
            task = ray.remote(run_group_here).options(
                num_cpus=_cpus_per_task(ray, remote.threads),
                num_gpus=1 if remote.device.startswith("cuda") else 0,
                max_retries=0,
            )
            pending = {task.remote(remote, d, m, list(c)): (d, m, c) for d, m, c in groups}
            ctx.progress.stage(f"{len(pending)} group(s) running as Ray tasks")
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                dataset, model, cells = pending.pop(done[0])
                try:
                    recorded = ray.get(done[0])
                except Exception as exc:  # noqa: BLE001 - a dead task fails its own cells
                    cause = getattr(exc, "cause", None)  # what the task raised, not Ray's wrapper
                    fail_cells(
                        ctx,
                        cells,
                        cause if isinstance(cause, Exception) else exc,
                        f"ray task for model {model} on {dataset}",
                    )
                    continue
                replay(ctx, recorded)
                ctx.progress.stage(f"Ray: {model} on {dataset} done, {len(pending)} group(s) left")
        finally:
            if started:
                ray.shutdown()
