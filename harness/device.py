"""Device selection: ``auto`` means CUDA when available, else CPU.

Selecting a CUDA device also makes float32 exact there (:func:`exact_float32`):
by default cuDNN convolutions run in TF32 on Ampere and later GPUs (about
1e-3 relative error), which would make thresholded metrics (monotonicity,
ROAD's "correct" output, hit rate) depend on batching and the algorithm
cuDNN picks, and keep frozen graphs from passing their check against eager.
"""

from __future__ import annotations

import torch

from harness.errors import SpecError


def exact_float32(device: torch.device) -> None:
    """On CUDA, run float32 matmuls and cuDNN convolutions in full precision (no TF32)."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.fp32_precision = "ieee"
        torch.backends.cudnn.conv.fp32_precision = "ieee"  # type: ignore[attr-defined]


def resolve_device(name: str) -> torch.device:
    """Return the torch device for a spec's ``device`` value (CUDA: float32 made exact)."""
    if name == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    elif name.startswith("cuda") and not torch.cuda.is_available():
        raise SpecError(
            "device", "device", f"{name!r} requested but CUDA is not available; use 'auto' or 'cpu'"
        )
    else:
        device = torch.device(name)
    exact_float32(device)
    return device
