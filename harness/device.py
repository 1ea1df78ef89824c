"""Device selection: ``auto`` means CUDA when available, else CPU.

Selecting a CUDA device also makes its float32 exact and its algorithms
deterministic (:func:`exact_cuda`): by default cuDNN convolutions run in TF32
on Ampere and later GPUs (about 1e-3 relative error), which would make
thresholded metrics (monotonicity, ROAD's "correct" output, hit rate) depend
on batching and the algorithm cuDNN picks, and keep frozen graphs from passing
their check against eager; cuDNN's benchmark mode and non-deterministic
backward algorithms would let gradient explanations, and so rank-based
metrics, change between runs.
"""

from __future__ import annotations

import os

import torch
import torch.utils.deterministic

from harness.errors import SpecError


def exact_cuda(device: torch.device) -> None:
    """On CUDA: full-precision float32 (no TF32) and deterministic algorithms.

    Uses torch's long-standing ``allow_tf32`` switches: setting the newer
    ``fp32_precision`` ones makes ``torch.backends.cudnn.allow_tf32`` and
    ``torch.backends.cudnn.flags()`` raise for the rest of the process.
    Deterministic algorithms cover more than cuDNN (e.g. the backward pass of
    an adaptive average pooling that upsamples, as VGG's does below 224 px,
    adds with atomics otherwise); an operation without a deterministic CUDA
    kernel warns instead of failing, and cuBLAS gets the workspace setting it
    needs for determinism unless the process already chose one (it is read
    when CUDA starts, so it may come too late in a process that used CUDA).
    Uninitialised memory is not filled with NaN (the deterministic mode's
    default, a fill kernel per ``torch.empty``): nothing here reads it.
    """
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]


def resolve_device(name: str, *, where: str = "device", key: str = "") -> torch.device:
    """Return the torch device for a spec's ``device`` value (CUDA: made exact).

    Raises a SpecError for a name torch does not know, CUDA without a GPU, or
    a GPU index the machine does not have; ``where`` and ``key`` say where the
    name came from (e.g. the spec file and ``"device"``, or ``"--device"``).
    """

    def refuse(message: str) -> SpecError:
        return SpecError(where, key, f"{name!r} {message}")

    if name == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            device = torch.device(name)
        except RuntimeError as exc:
            raise refuse(f"- expected 'auto', 'cpu' or 'cuda[:i]' ({exc})") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise refuse("requested but CUDA is not available; use 'auto' or 'cpu'")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise refuse(f"- expected a GPU index below {count} (this machine has {count})")
    exact_cuda(device)
    return device
