"""Isolation helpers: a seeded RNG scope, and snapshots of what plugins must not change."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from harness.contracts import Batch, Model, SupportsTorchModule
from harness.draws import seeded

__all__ = ["same_state", "seeded", "snapshot"]


def _hooks(module: nn.Module) -> int:
    names = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
    return sum(len(getattr(m, n, {})) for m in module.modules() for n in names)


def snapshot(model: Model, batch: Batch) -> dict[str, object]:
    """Capture what a plugin must not change: logits, state, inputs, modes, grads flags, hooks."""
    with torch.no_grad():
        snap: dict[str, object] = {"logits": model.logits(batch).detach().clone()}
    snap["state"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    snap["inputs"] = [t.clone() for t in (batch.images, batch.tokens) if t is not None]
    if isinstance(model, SupportsTorchModule):
        snap["modes"] = [m.training for m in model.module.modules()]
        snap["requires_grad"] = [p.requires_grad for p in model.module.parameters()]
        snap["hooks"] = _hooks(model.module)
    return snap


def same_state(a: object, b: object) -> bool:
    """Compare two snapshots (nested dicts and lists of tensors) exactly."""
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        return a.shape == b.shape and bool(torch.equal(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_state(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_state(x, y) for x, y in zip(a, b, strict=True))
    return a == b
