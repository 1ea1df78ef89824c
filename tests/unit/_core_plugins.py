"""Small plugin classes for the core's unit tests (spec, planner, registry)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar

import torch
from torch import Tensor, nn

from harness.contracts import (
    Attribution,
    Batch,
    ClassificationMetric,
    Dataset,
    DatasetInfo,
    DatasetTags,
    Explainer,
    ExplainerTags,
    ExplanationMetric,
    MetricKind,
    MetricTags,
    Modality,
    ModelTags,
    Need,
    Output,
    Provides,
    Sample,
    Task,
    TorchModel,
)
from harness.plugin_manager import Registries, registries_with


class ToyImages(Dataset):
    name: ClassVar[str] = "toy.images"
    tags: ClassVar[DatasetTags] = DatasetTags(provides=frozenset({Provides.MASKS}))

    def __init__(self, *, n: int = 12, masks: bool = True, task: str = "multiclass") -> None:
        self.n = n
        self.masks = masks
        self.task = task

    def info(self) -> DatasetInfo:
        return DatasetInfo(
            modality=Modality.IMAGE,
            task=Task(self.task),
            class_names=("a", "b"),
            provides=frozenset({Provides.MASKS}) if self.masks else frozenset(),
            image_size=(8, 8),
        )

    def splits(self) -> Mapping[str, Sequence[str]]:
        ids = [f"s{i}" for i in range(self.n)]
        return {"train": ids[: self.n // 2], "val": [], "test": ids[self.n // 2 :]}

    def _get(self, sample_id: str) -> Sample:
        i = int(sample_id[1:])
        g = torch.Generator().manual_seed(i)
        label = i % 2
        image = torch.rand(1, 8, 8, generator=g)
        mask = torch.zeros(2, 8, 8, dtype=torch.bool)
        mask[label, 2:4, 2:4] = True
        image[0, 2:4, 2:4] += 2.0 * label
        labels = (
            torch.tensor(label) if self.task == "multiclass" else torch.tensor([1 - label, label])
        )
        return Sample(id=sample_id, label=labels, image=image, mask=mask if self.masks else None)


class ToyTexts(ToyImages):
    name: ClassVar[str] = "toy.texts"

    def info(self) -> DatasetInfo:
        return DatasetInfo(modality=Modality.TEXT, task=Task.MULTICLASS, class_names=("a", "b"))


class TinyCNN(TorchModel):
    name: ClassVar[str] = "toy.cnn"
    tags: ClassVar[ModelTags] = ModelTags(target_layer="conv")

    def __init__(self, *, epochs: int = 1, lr: float = 1e-2, batch_size: int = 4) -> None:
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size

    def _build_module(self, info: DatasetInfo) -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(
            nn.Conv2d(info.channels, 4, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(4, info.num_outputs),
        )

    def target_layer(self) -> nn.Module:
        return self.module[0]


class BlackBox(TinyCNN):
    name: ClassVar[str] = "toy.blackbox"
    tags: ClassVar[ModelTags] = ModelTags(differentiable=False, randomisable=False)


class Gradient(Explainer):
    name: ClassVar[str] = "toy.gradient"
    tags: ClassVar[ExplainerTags] = ExplainerTags(needs=frozenset({Need.GRADIENTS}))

    def __init__(self, *, absolute: bool = True, n_steps: int = 4) -> None:
        self.absolute = absolute
        self.n_steps = n_steps

    def _explain(self, model, batch: Batch, targets: Tensor) -> Attribution:  # type: ignore[no-untyped-def]
        x = batch.images.clone().requires_grad_(True)  # type: ignore[union-attr]
        out = model.logits(batch.with_images(x)).gather(1, targets[:, None]).sum()
        (grad,) = torch.autograd.grad(out, x)
        return Attribution(pixels=grad.abs() if self.absolute else grad)


class CamLike(Gradient):
    name: ClassVar[str] = "toy.cam"
    tags: ClassVar[ExplainerTags] = ExplainerTags(
        needs=frozenset({Need.GRADIENTS, Need.TARGET_LAYER})
    )


class Sentences(Gradient):
    name: ClassVar[str] = "toy.sentences"
    tags: ClassVar[ExplainerTags] = ExplainerTags(output=frozenset({Output.SENTENCE}))


class MassInMask(ExplanationMetric):
    name: ClassVar[str] = "toy.mass"
    tags: ClassVar[MetricTags] = MetricTags(
        kind=MetricKind.LOCALISATION, needs=frozenset({Need.MASKS, Need.PIXEL_ATTRIBUTIONS})
    )
    higher_is_better: ClassVar[bool] = True

    def _score(self, model, batch, targets, attribution, explainer):  # type: ignore[no-untyped-def]
        a = attribution.pixels.clamp(min=0).flatten(1)
        m = batch.target_masks(targets).flatten(1).float()
        return (a * m).sum(1) / a.sum(1).clamp(min=1e-12)


class Randomisation(MassInMask):
    name: ClassVar[str] = "toy.randomisation"
    tags: ClassVar[MetricTags] = MetricTags(
        kind=MetricKind.SANITY, needs=frozenset({Need.RANDOMISABLE, Need.EXPLAINER})
    )


class Accuracy(ClassificationMetric):
    name: ClassVar[str] = "toy.accuracy"

    def _compute(self, labels: Tensor, probs: Tensor, task: Task) -> float:
        return float((probs.argmax(1) == labels).double().mean())


def toy_registries() -> Registries:
    """Registries holding the toy plugins above, as if one distribution supplied them."""
    return registries_with(
        {
            "datasets": [ToyImages, ToyTexts],
            "models": [TinyCNN, BlackBox],
            "explainers": [Gradient, CamLike, Sentences],
            "metrics": [MassInMask, Randomisation, Accuracy],
        },
        distribution="toy-dist",
        version="0.0",
    )


def write_toy_spec(folder: Path, *, metrics: str = "[toy.mass]", explain: str = "{n: 4}") -> Path:
    """Write ``folder/toy.yaml``: 8 toy images, the toy CNN and gradient, 10 bootstrap resamples."""
    spec = folder / "toy.yaml"
    spec.write_text(
        "benchmark: toy\n"
        "dataset: {name: toy.images, params: {n: 8}}\n"
        "models: [toy.cnn]\n"
        "explainers: [toy.gradient]\n"
        f"metrics: {metrics}\n"
        f"explain: {explain}\n"
        "bootstrap: {n: 10}\n"
    )
    return spec
