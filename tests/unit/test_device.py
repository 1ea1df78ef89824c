"""Device selection: ``auto``, unavailable CUDA, and exact float32 on CUDA."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from harness.device import resolve_device
from harness.errors import SpecError


@pytest.fixture
def precision() -> Iterator[None]:
    """Restore the global TF32 settings a test changes."""
    conv = torch.backends.cudnn.conv  # type: ignore[attr-defined]
    saved = (torch.backends.cuda.matmul.fp32_precision, conv.fp32_precision)
    yield
    torch.backends.cuda.matmul.fp32_precision, conv.fp32_precision = saved


def test_auto_is_the_cpu_without_cuda(monkeypatch: pytest.MonkeyPatch, precision: None) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert torch.backends.cudnn.conv.fp32_precision == "tf32"  # type: ignore[attr-defined]
    with pytest.raises(SpecError, match="'cuda:1' requested but CUDA is not available"):
        resolve_device("cuda:1")


def test_a_cuda_device_turns_tf32_off(monkeypatch: pytest.MonkeyPatch, precision: None) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    assert torch.backends.cuda.matmul.fp32_precision == "ieee"
    assert torch.backends.cudnn.conv.fp32_precision == "ieee"  # type: ignore[attr-defined]
