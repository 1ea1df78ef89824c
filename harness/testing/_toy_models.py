"""Toy torch models: a tiny CNN, a text-as-image CNN and an image + text late-fusion model."""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor, nn

from harness.contracts import Batch, DatasetInfo, Modality, ModelTags, Task, TorchModel
from harness.errors import CapabilityError

_CITATION = "harness.testing conformance fixture (toy architecture)"


def _features(in_channels: int, width: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, width, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1),
        nn.ReLU(),
    )


class _ConvNet(nn.Module):
    def __init__(self, in_channels: int, width: int, out: int) -> None:
        super().__init__()
        self.features = _features(in_channels, width)
        self.head = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(2 * width, out))

    def forward(self, images: Tensor) -> Tensor:
        out: Tensor = self.head(self.features(images))
        return out


class ToyCNN(TorchModel):
    """A tiny two-conv CNN for image batches, with ``features.3`` as its CAM layer.

    Parameters
    ----------
    width : int
        Channels of the first convolution (the second has twice as many).
    epochs, lr, batch_size : int, float, int
        Training settings of :meth:`TorchModel.fit`.
    cam_layer : str or None
        Dotted name of a layer overriding the default CAM layer.
    """

    name: ClassVar[str] = "toy.cnn"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = _CITATION
    tags: ClassVar[ModelTags] = ModelTags(target_layer="features.3")

    def __init__(
        self,
        *,
        width: int = 8,
        epochs: int = 30,
        lr: float = 0.01,
        batch_size: int = 8,
        cam_layer: str | None = None,
    ) -> None:
        self.width = width
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.cam_layer = cam_layer

    def _build_module(self, info: DatasetInfo) -> nn.Module:
        return _ConvNet(info.channels, self.width, info.num_outputs)


class _TextGridNet(nn.Module):
    def __init__(self, vocab: int, dim: int, width: int, out: int, side: int) -> None:
        super().__init__()
        self.side = side
        self.embedding = nn.Embedding(vocab, dim, padding_idx=0)
        self.conv = nn.Sequential(
            nn.Conv2d(dim, width, 1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(),
        )
        self.head = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(width, out))

    def forward(self, tokens: Tensor) -> Tensor:
        grid = self.embedding(tokens).transpose(1, 2)
        grid = grid.reshape(tokens.shape[0], -1, self.side, self.side)
        out: Tensor = self.head(self.conv(grid))
        return out


class ToyTextGridCNN(TorchModel):
    """Text as an image (paper 000): token embeddings laid row-major on a side x side grid.

    Token ``l`` sits at grid cell ``(l // side, l % side)``. A 1 x 1 then a
    3 x 3 convolution read each token, then its grid neighbours; the CAM
    layer ``conv.2`` keeps the grid's resolution, so a CAM map flattened
    row-major is a relevance per token.

    Parameters
    ----------
    dim : int
        Embedding size (the grid's channels).
    width : int
        Channels of the convolutions.
    epochs, lr, batch_size : int, float, int
        Training settings of :meth:`TorchModel.fit`.
    """

    name: ClassVar[str] = "toy.text_grid_cnn"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = _CITATION
    tags: ClassVar[ModelTags] = ModelTags(
        modalities=frozenset({Modality.TEXT}), target_layer="conv.2"
    )

    def __init__(
        self,
        *,
        dim: int = 8,
        width: int = 8,
        epochs: int = 30,
        lr: float = 0.01,
        batch_size: int = 8,
    ) -> None:
        self.dim = dim
        self.width = width
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size

    def _build_module(self, info: DatasetInfo) -> nn.Module:
        side = math.isqrt(info.seq_len or 0)
        if info.vocab_size is None or not info.seq_len or side * side != info.seq_len:
            raise CapabilityError(
                f"model {self.name!r}: seq_len {info.seq_len}, vocab_size {info.vocab_size} - "
                "expected a square number of tokens (e.g. 625 = 25 x 25) and a vocabulary size.",
                plugin=self.name,
            )
        return _TextGridNet(info.vocab_size, self.dim, self.width, info.num_outputs, side)

    def _forward(self, batch: Batch) -> Tensor:
        if batch.tokens is None:
            raise CapabilityError(f"model {self.name!r} needs token ids", plugin=self.name)
        out: Tensor = self.module(batch.tokens)
        return out


class _FusionNet(nn.Module):
    def __init__(self, in_channels: int, vocab: int, dim: int, width: int, out: int) -> None:
        super().__init__()
        self.image = _features(in_channels, width)
        self.pool = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten())
        self.embedding = nn.Embedding(vocab, dim, padding_idx=0)
        self.fusion = nn.Sequential(nn.Linear(2 * width + dim, 16), nn.ReLU(), nn.Linear(16, out))

    def forward(self, images: Tensor, tokens: Tensor) -> Tensor:
        known = (tokens != 0).unsqueeze(-1).to(images.dtype)
        text = (self.embedding(tokens) * known).sum(1) / known.sum(1).clamp(min=1.0)
        out: Tensor = self.fusion(torch.cat([self.pool(self.image(images)), text], dim=1))
        return out


class ToyFusion(TorchModel):
    """Late fusion of an image CNN and a bag of report tokens (paper 003), multi-label.

    Image features (CAM layer ``image.3``) and the mean token embedding are
    concatenated into a two-layer head with one sigmoid output per finding.

    Parameters
    ----------
    dim : int
        Token embedding size.
    width : int
        Channels of the first image convolution.
    epochs, lr, batch_size : int, float, int
        Training settings of :meth:`TorchModel.fit`.
    """

    name: ClassVar[str] = "toy.fusion"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = _CITATION
    tags: ClassVar[ModelTags] = ModelTags(
        modalities=frozenset({Modality.IMAGE_TEXT}),
        tasks=frozenset({Task.MULTILABEL}),
        target_layer="image.3",
    )

    def __init__(
        self,
        *,
        dim: int = 8,
        width: int = 8,
        epochs: int = 30,
        lr: float = 0.01,
        batch_size: int = 8,
    ) -> None:
        self.dim = dim
        self.width = width
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size

    def _build_module(self, info: DatasetInfo) -> nn.Module:
        if info.vocab_size is None:
            raise CapabilityError(f"model {self.name!r} needs a vocabulary size", plugin=self.name)
        return _FusionNet(info.channels, info.vocab_size, self.dim, self.width, info.num_outputs)

    def _forward(self, batch: Batch) -> Tensor:
        if batch.images is None or batch.tokens is None:
            raise CapabilityError(f"model {self.name!r} needs images and tokens", plugin=self.name)
        out: Tensor = self.module(batch.images, batch.tokens)
        return out
