"""Shared toy model and inputs for metric tests (small, CPU, seconds).

Fixtures
--------
``toy``          ToySetup: a tiny CNN (1 x 16 x 16 inputs, 3 classes), 8 samples with one
                 bright blob each (its mask is the ground truth for the target class),
                 targets = the model's predictions, input x gradient attributions.
``toy_factory``  ``toy_factory(n=8, size=16, classes=3, channels=1, seed=0)`` builds another one.
``wrap``         ``wrap(module, task=Task.MULTICLASS)`` turns any ``nn.Module`` into a built
                 :class:`harness.contracts.TorchModel`.

Every ToySetup carries numpy copies for Quantus: ``x`` (N, C, H, W), ``y`` (N,),
``a`` (N, 1, H, W) and ``s`` (N, 1, H, W) float masks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from harness.contracts import Attribution, Batch, DatasetInfo, Modality, Model, Task, TorchModel


class ToyModel(TorchModel):
    """A TorchModel around a given module."""

    name: ClassVar[str] = "test.toy_model"

    def __init__(self, *, net: nn.Module | None = None) -> None:
        self.net = net

    def _build_module(self, info: DatasetInfo) -> nn.Module:
        if self.net is None:
            raise ValueError("ToyModel needs net")
        return self.net


def wrap_module(net: nn.Module, task: Task = Task.MULTICLASS, classes: int = 2) -> ToyModel:
    """Return a built ToyModel (eval mode) around ``net``."""
    model = ToyModel(net=net)
    names = tuple(f"c{i}" for i in range(classes))
    model.build(DatasetInfo(Modality.IMAGE, task, names))
    return model


def toy_cnn(channels: int = 1, classes: int = 3, size: int = 16) -> nn.Module:
    """A two-conv CNN with global pooling: works for any input size >= 4."""
    return nn.Sequential(
        nn.Conv2d(channels, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, classes),
    )  # fmt: skip


def input_x_gradient(model: Model, batch: Batch, targets: Tensor) -> Attribution:
    """Input x gradient of the target logit, summed over channels (tie-free in practice)."""
    assert batch.images is not None
    x = batch.images.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        logits = model.logits(batch.with_images(x))
        (grad,) = torch.autograd.grad(logits.gather(1, targets.view(-1, 1)).sum(), x)
    return Attribution(pixels=(grad * x).detach().sum(dim=1))


@dataclass(frozen=True)
class ToySetup:
    """Model, batch, targets and attribution, plus numpy copies for Quantus."""

    model: ToyModel
    module: nn.Module
    batch: Batch
    targets: Tensor
    attribution: Attribution
    x: np.ndarray
    y: np.ndarray
    a: np.ndarray
    s: np.ndarray


def make_toy(
    n: int = 8, size: int = 16, classes: int = 3, channels: int = 1, seed: int = 0
) -> ToySetup:
    """Build a seeded ToySetup."""
    torch.manual_seed(seed)
    net = toy_cnn(channels, classes, size)
    model = wrap_module(net, classes=classes)
    g = torch.Generator().manual_seed(seed + 1)
    coarse = torch.rand(n, channels, max(2, size // 4), max(2, size // 4), generator=g)
    base = nn.functional.interpolate(
        coarse, size=(size, size), mode="bilinear", align_corners=False
    )
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    centre = torch.randint(size // 4, size - size // 4, (2, n, 1, 1), generator=g)
    blob = ((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) <= (size // 5) ** 2
    images = (0.6 * base + 0.4 * blob.unsqueeze(1).float()).clamp(0, 1)
    with torch.no_grad():
        targets = net(images).argmax(dim=1)
    masks = torch.zeros(n, classes, size, size, dtype=torch.bool)
    masks[torch.arange(n), targets] = blob
    ids = tuple(f"toy{seed}-{i}" for i in range(n))
    batch = Batch(ids=ids, labels=targets.clone(), images=images, masks=masks)
    attribution = input_x_gradient(model, batch, targets)
    assert attribution.pixels is not None
    return ToySetup(
        model=model, module=net, batch=batch, targets=targets, attribution=attribution,
        x=images.numpy().copy(), y=targets.numpy().copy(),
        a=attribution.pixels.unsqueeze(1).numpy().copy(),
        s=blob.unsqueeze(1).numpy().astype(np.float32),
    )  # fmt: skip


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Run metric tests on one torch thread (toy models gain nothing from more; shared CPUs)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def toy() -> ToySetup:
    """The default toy setup (8 samples, 1 x 16 x 16, 3 classes)."""
    return make_toy()


@pytest.fixture(scope="session")
def toy_factory() -> Callable[..., ToySetup]:
    """Build other toy setups: ``toy_factory(n=, size=, classes=, channels=, seed=)``."""
    return make_toy


@pytest.fixture(scope="session")
def wrap() -> Callable[..., ToyModel]:
    """``wrap(module, task=Task.MULTICLASS, classes=2)`` -> built TorchModel."""
    return wrap_module
