"""Device selection: ``auto``, bad names, unavailable CUDA, exact and deterministic CUDA."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch
import torch.utils.deterministic

from harness.device import resolve_device
from harness.errors import SpecError

_CUDNN = ("allow_tf32", "deterministic", "benchmark")


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Restore the global cuDNN / matmul / determinism settings a test changes."""
    cudnn = {k: getattr(torch.backends.cudnn, k) for k in _CUDNN}
    matmul = torch.backends.cuda.matmul.allow_tf32
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    fill = torch.utils.deterministic.fill_uninitialized_memory  # type: ignore[attr-defined]
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)  # restored after the test
    yield
    for k, v in cudnn.items():
        setattr(torch.backends.cudnn, k, v)
    torch.backends.cuda.matmul.allow_tf32 = matmul
    torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
    torch.utils.deterministic.fill_uninitialized_memory = fill  # type: ignore[attr-defined]


def test_auto_is_the_cpu_without_cuda(monkeypatch: pytest.MonkeyPatch, settings: None) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    assert torch.backends.cudnn.allow_tf32 and not torch.backends.cudnn.deterministic
    assert not torch.are_deterministic_algorithms_enabled()  # the CPU's settings are left alone
    with pytest.raises(SpecError, match="'cuda:1' requested but CUDA is not available"):
        resolve_device("cuda:1")


def test_unknown_device_names_are_spec_errors() -> None:
    for name in ("cuda:x", "gpu", ""):
        with pytest.raises(SpecError, match="expected 'auto', 'cpu' or 'cuda\\[:i\\]'"):
            resolve_device(name)


def test_a_missing_gpu_index_is_named(monkeypatch: pytest.MonkeyPatch, settings: None) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(SpecError, match="'cuda:7' - expected a GPU index below 1"):
        resolve_device("cuda:7")
    assert resolve_device("cuda:0") == torch.device("cuda:0")


def test_a_cuda_device_is_exact_and_deterministic(
    monkeypatch: pytest.MonkeyPatch, settings: None
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    assert not torch.backends.cuda.matmul.allow_tf32
    assert not torch.backends.cudnn.allow_tf32
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    # beyond cuDNN (e.g. adaptive pooling's atomic backward); no deterministic kernel: a warning
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.is_deterministic_algorithms_warn_only_enabled()
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert not torch.utils.deterministic.fill_uninitialized_memory  # type: ignore[attr-defined]
    with torch.backends.cudnn.flags(enabled=True):  # the legacy API stays usable
        pass
