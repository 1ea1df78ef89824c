"""Device selection: ``auto`` means CUDA when available, else CPU."""

from __future__ import annotations

import torch

from harness.errors import SpecError


def resolve_device(name: str) -> torch.device:
    """Return the torch device for a spec's ``device`` value."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SpecError(
            "device", "device", f"{name!r} requested but CUDA is not available; use 'auto' or 'cpu'"
        )
    return torch.device(name)
