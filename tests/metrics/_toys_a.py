"""Tiny CPU fixtures for the localisation / complexity / sanity / robustness metric tests.

A deterministic small CNN (a TorchModel), an input x gradient explainer
(tie-free maps, differentiable models), a Grad-CAM-like explainer, and
synthetic batches of blob images with exact per-class masks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import numpy as np
import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from harness.contracts import (
    Attribution,
    Batch,
    DatasetInfo,
    Explainer,
    ExplainerTags,
    Modality,
    Model,
    Need,
    Task,
    TorchModel,
)


class TinyCNN(TorchModel):
    """Two conv layers, global average pooling and a linear head."""

    name: ClassVar[str] = "test.tiny_cnn"

    def __init__(self, *, classes: int = 3, width: int = 8, seed: int = 0) -> None:
        self.classes = classes
        self.width = width
        self.seed = seed

    def _build_module(self, info: DatasetInfo) -> nn.Module:
        torch.manual_seed(self.seed)
        w = self.width
        return nn.Sequential(
            nn.Conv2d(info.channels, w, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(w, w, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(w, info.num_outputs),
        )


class ModuleModel(TorchModel):
    """Wrap an existing ``nn.Module`` (e.g. one Quantus hands to an explain function)."""

    name: ClassVar[str] = "test.module_model"

    def __init__(self, *, module: nn.Module | None = None) -> None:
        self.module = module  # type: ignore[assignment]

    def _build_module(self, info: DatasetInfo) -> nn.Module:
        raise RuntimeError("ModuleModel wraps a ready module")


def tiny_model(classes: int = 3, seed: int = 0, channels: int = 1) -> TinyCNN:
    """Return a built TinyCNN."""
    model = TinyCNN(classes=classes, seed=seed)
    info = DatasetInfo(
        modality=Modality.IMAGE,
        task=Task.MULTICLASS,
        class_names=tuple(f"c{i}" for i in range(classes)),
        channels=channels,
    )
    model.build(info)
    return model


class InputXGradient(Explainer):
    """Input x gradient of the target logit, summed over channels."""

    name: ClassVar[str] = "test.input_x_gradient"
    tags: ClassVar[ExplainerTags] = ExplainerTags(needs=frozenset({Need.GRADIENTS}))

    def _explain(self, model: Model, batch: Batch, targets: Tensor) -> Attribution:
        assert batch.images is not None
        x = batch.images.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            logits = model.logits(batch.with_images(x))
            picked = logits.gather(1, targets.view(-1, 1)).sum()
            (grad,) = torch.autograd.grad(picked, x)
        return Attribution(pixels=(grad * x).sum(1).detach())


def blob_batch(n: int = 8, size: int = 32, classes: int = 3, seed: int = 0) -> tuple[Batch, Tensor]:
    """Return a batch of noisy images with one bright disk per row, and its targets.

    ``masks`` is (N, classes, H, W): the disk in the row's target channel, the
    other channels hold a different disk (so masks differ per class).
    """
    g = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    images = g.normal(0.0, 0.1, (n, 1, size, size)).astype(np.float32)
    masks = np.zeros((n, classes, size, size), dtype=bool)
    targets = g.integers(0, classes, n)
    for i in range(n):
        for c in range(classes):
            r = g.integers(size // 10 + 1, size // 5 + 2)
            cy, cx = g.integers(r, size - r, 2)
            masks[i, c] = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        images[i, 0][masks[i, targets[i]]] += 1.0
    batch = Batch(
        ids=tuple(f"s{i}" for i in range(n)),
        labels=torch.as_tensor(targets),
        images=torch.from_numpy(images),
        masks=torch.from_numpy(masks),
    )
    return batch, torch.as_tensor(targets)


def random_maps(n: int, size: int, seed: int = 0) -> Tensor:
    """Return (N, H, W) tie-free signed random attributions."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, size, size, generator=g, dtype=torch.float64).float()


def single_thread() -> Iterator[None]:
    """Run with one torch thread, then restore (use as the body of a module fixture).

    These tests use tiny tensors: intra-op threads only add barriers, which stall
    badly on a shared, oversubscribed CPU.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# Hypothesis settings and strategy of the "a row ignores its batch" property tests: few
# deterministic examples (each runs a metric), a fixture-scoped case shared across them.
BATCH_PROPERTY = settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
SUB_BATCHES = st.one_of(
    st.permutations(range(8)),
    st.lists(st.integers(0, 7), min_size=1, max_size=7, unique=True),
)


def explained_case(
    explainer: Explainer, classes: int = 3, targets: Tensor | None = None
) -> tuple[TinyCNN, Batch, Tensor, Attribution]:
    """Return (model, 8-row 16 px batch, targets, the explainer's attributions).

    Targets default to the model's predicted classes.
    """
    model = tiny_model(classes=classes, seed=2)
    batch, _ = blob_batch(n=8, size=16, classes=classes, seed=5)
    if targets is None:
        with torch.no_grad():
            targets = model.module(batch.images).argmax(1)
    return model, batch, targets, explainer.explain(model, batch, targets)
