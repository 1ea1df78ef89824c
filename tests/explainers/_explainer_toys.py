"""Small models and batches for the explainer tests (CPU, a few ms per forward pass)."""

from __future__ import annotations

from collections import OrderedDict
from typing import ClassVar

import torch
from torch import Tensor, nn

from harness.contracts import Batch, DatasetInfo, Modality, ModelTags, Task, TorchModel


class CountingModel(TorchModel):
    """A TorchModel that counts its forward calls and the rows they carried."""

    calls: int = 0
    rows: int = 0
    max_rows: int = 0

    def count(self, batch: Batch) -> None:
        self.calls += 1
        self.rows += len(batch)
        self.max_rows = max(self.max_rows, len(batch))

    def _forward(self, batch: Batch) -> Tensor:
        self.count(batch)
        return super()._forward(batch)

    def reset_counts(self) -> None:
        self.calls = self.rows = self.max_rows = 0


class TinyCNN(CountingModel):
    """conv1 -> relu -> conv2 (target layer) -> relu -> global average pool -> fc."""

    name: ClassVar[str] = "test.tiny_cnn"
    tags: ClassVar[ModelTags] = ModelTags(target_layer="conv2")

    def __init__(self, *, channels: int = 1, width: int = 8, seed: int = 0) -> None:
        self.channels = channels
        self.width = width
        self.seed = seed

    def _build_module(self, info: DatasetInfo) -> nn.Module:
        torch.manual_seed(self.seed)
        return nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(self.channels, 6, 3, padding=1),
                relu1=nn.ReLU(),
                conv2=nn.Conv2d(6, self.width, 3, padding=1, stride=2),
                relu2=nn.ReLU(),
                pool=nn.AdaptiveAvgPool2d(1),
                flatten=nn.Flatten(),
                fc=nn.Linear(self.width, info.num_outputs),
            )
        )


def _no_inplace(module: nn.Module) -> None:
    for child in module.modules():
        if isinstance(child, nn.ReLU):
            child.inplace = False


class ResNet18(CountingModel):
    """torchvision ResNet18 with one input channel, no in-place ReLUs, non-trivial BN statistics."""

    name: ClassVar[str] = "test.resnet18"
    tags: ClassVar[ModelTags] = ModelTags(target_layer="layer4")

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = seed

    def _build_module(self, info: DatasetInfo) -> nn.Module:
        from torchvision.models import resnet18

        torch.manual_seed(self.seed)
        net = resnet18(num_classes=info.num_outputs)
        net.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
        _no_inplace(net)
        net.train()
        with torch.no_grad():
            for _ in range(3):
                net(torch.rand(8, 1, 32, 32) * 2 - 0.5)
            for m in net.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.2, 0.2)
        return net.eval()


class _Fusion(nn.Module):
    def __init__(self, vocab: int, outputs: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.embed = nn.Embedding(vocab, 4)
        self.fc = nn.Linear(4, outputs)

    def forward(self, images: Tensor, tokens: Tensor) -> Tensor:
        img = self.pool(self.relu(self.conv(images))).flatten(1)
        txt = self.embed(tokens).mean(dim=1)
        return self.fc(img * (1 + txt))


class ToyMultimodal(CountingModel):
    """Image features gated by token embeddings: attributions depend on each row's tokens."""

    name: ClassVar[str] = "test.toy_multimodal"
    tags: ClassVar[ModelTags] = ModelTags(
        modalities=frozenset({Modality.IMAGE_TEXT}), target_layer="conv"
    )

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = seed

    def _build_module(self, info: DatasetInfo) -> nn.Module:
        torch.manual_seed(self.seed)
        net = _Fusion(info.vocab_size or 10, info.num_outputs)
        with torch.no_grad():
            net.embed.weight.mul_(2.0)
        return net

    def _forward(self, batch: Batch) -> Tensor:
        self.count(batch)
        if batch.images is None or batch.tokens is None:
            raise ValueError("toy multimodal model needs images and tokens")
        if len(batch.images) != len(batch.tokens):
            raise ValueError("images and tokens have different row counts")
        return self.module(batch.images, batch.tokens)


def info_for(
    k: int, task: Task = Task.MULTICLASS, modality: Modality = Modality.IMAGE
) -> DatasetInfo:
    return DatasetInfo(
        modality=modality, task=task, class_names=tuple(f"c{i}" for i in range(k)), vocab_size=10
    )


def make_batch(
    n: int, size: int, *, channels: int = 1, seed: int = 0, tokens: bool = False
) -> Batch:
    """Random images in [0, 1] with a bright square per image, optional token ids."""
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, channels, size, size, generator=g) * 0.3
    for i in range(n):
        r, c = (i * 5) % (size // 2), (i * 3) % (size // 2)
        images[i, :, r : r + size // 3, c : c + size // 3] += 0.7
    toks = torch.randint(1, 10, (n, 5), generator=g) if tokens else None
    return Batch(
        ids=tuple(f"s{i}" for i in range(n)),
        labels=torch.zeros(n, dtype=torch.long),
        images=images,
        tokens=toks,
    )


class Wrapped(CountingModel):
    """Any ``nn.Module`` as a TorchModel (the module is handed over by :func:`wrap`)."""

    name: ClassVar[str] = "test.wrapped"
    net: nn.Module

    def _build_module(self, info: DatasetInfo) -> nn.Module:
        return self.net


def wrap(net: nn.Module, outputs: int = 2) -> Wrapped:
    """Return ``net`` wrapped as a built TorchModel with ``outputs`` classes."""
    model = Wrapped()
    model.net = net
    model.build(info_for(outputs))
    return model
