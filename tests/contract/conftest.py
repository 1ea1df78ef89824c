"""Contract tests run tiny models: one torch thread each (``HARNESS_TEST_THREADS`` overrides).

On a shared 2-core machine, two OpenMP threads per process spin against
each other and make these tests several times slower.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("HARNESS_TEST_THREADS", "1")))
    yield
    torch.set_num_threads(before)
