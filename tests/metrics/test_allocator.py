"""The engine keeps freed tensor buffers in the process: chunks stop page-faulting.

Counted, not timed: minor page faults (``getrusage``) in fresh interpreters
that first evaluate a metric (the engine tunes the allocator then, unless
``HARNESS_TUNE_MALLOC=0``) and then allocate and free three 16 MB tensors ten
times, the pattern of a chunk's activations. Left alone, glibc gives the
freed heap top back to the OS (its trim threshold adapts to twice the largest
freed block, 32 MB here), so every round faults the pages in again.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from harness.metrics import _allocator

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="the thresholds are glibc's",
)

ROUNDS, BUFFERS, PAGES = 10, 3, 16 * 2**20 // 4096

SCRIPT = f"""
import resource, torch
from torch import nn
import harness
from harness.contracts import Attribution, Batch, DatasetInfo, Modality, Task, TorchModel
from harness.metrics import _allocator

class Net(TorchModel):
    name = "test.allocator_net"
    def _build_module(self, info):
        return nn.Sequential(nn.Flatten(), nn.Linear(16 * 16, 2))

model = Net()
model.build(DatasetInfo(Modality.IMAGE, Task.MULTICLASS, ("a", "b"), image_size=(16, 16)))
batch = Batch(ids=("a", "b"), labels=torch.zeros(2, dtype=torch.long), images=torch.rand(2, 1, 16, 16))
metric = harness.get_metric("faithfulness.pixel_flipping", pixels_per_step=16)
metric.evaluate(model, batch, batch.labels, Attribution(pixels=torch.rand(2, 16, 16)))
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range({ROUNDS}):
    buffers = [torch.ones({PAGES} * 1024) for _ in range({BUFFERS})]
    del buffers
print(_allocator._STATE, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _run(tune: str) -> tuple[str, int]:
    env = {**os.environ, _allocator.ENV: tune}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True
    )
    state, faults = out.stdout.rsplit(maxsplit=1)
    return state, int(faults)


def test_engine_tunes_the_allocator_and_freed_buffers_are_reused() -> None:
    untouched_state, untouched = _run("0")
    tuned_state, tuned = _run("1")
    assert untouched_state == "[False]" and tuned_state == "[True]"
    touched = ROUNDS * BUFFERS * PAGES
    assert tuned < 0.15 * touched  # only the first round faulted its pages in
    assert untouched > 4 * tuned  # every round did (fewer faults with transparent huge pages)
