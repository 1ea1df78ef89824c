"""The engine keeps freed tensor buffers: repeated evaluations stop page-faulting.

Minor page faults (``getrusage``) are counted in fresh interpreters, one with
the allocator left alone (``HARNESS_TUNE_MALLOC=0``) and one with the engine's
default, over the same repeated metric evaluations: a count, not a timing.
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

SCRIPT = """
import resource, torch
from torch import nn
import harness
from harness.contracts import Attribution, Batch, DatasetInfo, Modality, Task, TorchModel

class Net(TorchModel):
    name = "test.allocator_net"
    def _build_module(self, info):
        return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
                             nn.Linear(8 * 48 * 48, 2))

torch.manual_seed(0)
torch.set_num_threads(1)
model = Net()
model.build(DatasetInfo(Modality.IMAGE, Task.MULTICLASS, ("a", "b"), image_size=(48, 48)))
images = torch.rand(8, 1, 48, 48)
batch = Batch(ids=tuple(map(str, range(8))), labels=torch.zeros(8, dtype=torch.long), images=images)
attribution = Attribution(pixels=torch.rand(8, 48, 48))
metric = harness.get_metric("faithfulness.pixel_flipping", pixels_per_step=48)
targets = torch.zeros(8, dtype=torch.long)
metric.evaluate(model, batch, targets, attribution)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    harness.metrics._engine.cache_clear()
    metric.evaluate(model, batch, targets, attribution)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(tune: str) -> int:
    env = {**os.environ, _allocator.ENV: tune}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True
    )
    return int(out.stdout.split()[-1])


def test_tuned_allocator_stops_page_faults_per_chunk() -> None:
    untouched, tuned = _faults("0"), _faults("1")
    assert untouched > 2000  # every chunk's buffers were mapped and faulted in again
    assert tuned * 10 < untouched
