"""The engine keeps freed tensor buffers in the process: chunks stop page-faulting.

Counted, not timed: free heap bytes (``mallinfo2``) and minor page faults
(``getrusage``) in fresh interpreters that first evaluate a metric (the engine
tunes the allocator then, unless ``HARNESS_TUNE_MALLOC=0``) and then allocate
and free three 30 MB tensors ten times, the pattern of a chunk's activations.
Left alone, glibc either maps such buffers (below 32 MB its adaptive mmap
threshold depends on what was freed before) or gives the freed 90 MB heap top
back to the OS (its trim threshold is twice the mmap threshold, at most
64 MB), and the next round faults the pages in again. The untouched count
varies between runs (23-73 % of the pages here: heap fragmentation can block
a trim, transparent huge pages fault 2 MB at once), so the bound is on the
tuned side: the first round's 10 % and no more.
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
    reason="the thresholds are glibc's (mallinfo2: glibc 2.33 or later)",
)

ROUNDS, BUFFERS, PAGES = 10, 3, 30 * 2**20 // 4096

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
import ctypes
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]
mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = Info
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(_allocator._STATE, mallinfo2().fordblks, faults)
"""


def _run(tune: str) -> tuple[str, int, int]:
    """Return (tuning state, free bytes kept in the heap, page faults of the rounds)."""
    env = {**os.environ, _allocator.ENV: tune}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True
    )
    state, kept, faults = out.stdout.rsplit(maxsplit=2)
    return state, int(kept), int(faults)


def test_engine_tunes_the_allocator_and_freed_buffers_are_reused() -> None:
    untouched_state, _, untouched_faults = _run("0")
    tuned_state, tuned_kept, tuned_faults = _run("1")
    assert untouched_state == "[False]" and tuned_state == "[True]"
    touched = ROUNDS * BUFFERS * PAGES
    assert tuned_kept >= BUFFERS * PAGES * 4096  # the buffers stayed in the heap ...
    assert tuned_faults < 0.15 * touched  # ... so only the first round faulted them in
    assert untouched_faults > tuned_faults
