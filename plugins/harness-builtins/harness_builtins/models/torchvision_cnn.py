"""Torchvision ResNet18 / ResNet50 / VGG16 / DenseNet121 for any channels and outputs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import torch
from torch import Tensor, nn

from harness.contracts import ModelTags
from harness_builtins.models._torchvision_base import TorchvisionCNN

__all__ = ["DenseNet121", "ResNet18", "ResNet50", "VGG16"]

_CITE_RESNET = "He, Zhang, Ren, Sun. Deep Residual Learning for Image Recognition. CVPR 2016."


class ResNet18(TorchvisionCNN):
    """Torchvision ResNet-18; CAM layer ``layer3`` by default.

    Parameters are those of :class:`TorchvisionCNN` (epochs, lr, batch_size,
    weights, freeze, cam_layer). Paper 003 fine-tunes it with
    ``freeze=["conv1", "bn1", "layer1", "layer2"]``.

    The default CAM layer is ``layer3`` (stride 16), not the usual ``layer4``
    (stride 32): this model mostly runs on 64-128 px images, where ``layer4``
    is a 2x2-4x4 map. On ``synthetic.lesions`` (64 px, 5 epochs) Grad-CAM on
    ``layer4`` never hit the lesion in the pointing game; ``layer3`` did.
    Set ``cam_layer="layer4"`` for 224 px inputs.
    """

    name: ClassVar[str] = "torchvision.resnet18"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = _CITE_RESNET
    tags: ClassVar[ModelTags] = ModelTags(target_layer="layer3")
    arch: ClassVar[str] = "resnet18"
    weights_url: ClassVar[str] = "https://download.pytorch.org/models/resnet18-f37072fd.pth"
    first_conv: ClassVar[str] = "conv1"
    head: ClassVar[str] = "fc"


class ResNet50(TorchvisionCNN):
    """Torchvision ResNet-50 (bottleneck blocks); CAM layer ``layer4`` by default."""

    name: ClassVar[str] = "torchvision.resnet50"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = _CITE_RESNET
    tags: ClassVar[ModelTags] = ModelTags(target_layer="layer4")
    arch: ClassVar[str] = "resnet50"
    weights_url: ClassVar[str] = "https://download.pytorch.org/models/resnet50-0676ba61.pth"
    first_conv: ClassVar[str] = "conv1"
    head: ClassVar[str] = "fc"


class VGG16(TorchvisionCNN):
    """Torchvision VGG-16 (no batch norm); CAM layer ``features.29``, the last conv's ReLU.

    Besides the parameters of :class:`TorchvisionCNN`, ``classifier_width``
    sets the width of the two hidden fully connected layers (4096 in the
    original, which ImageNet weights need; smaller values make a light model).

    Grad-CAM weights the rectified maps of the last convolution (Selvaraju et
    al. 2017), which is the output of ``features.29`` (``features.28`` is the
    conv itself, ``features.30`` the max-pool that halves the resolution).
    """

    name: ClassVar[str] = "torchvision.vgg16"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = (
        "Simonyan, Zisserman. Very Deep Convolutional Networks for Large-Scale Image "
        "Recognition. ICLR 2015."
    )
    tags: ClassVar[ModelTags] = ModelTags(target_layer="features.29")
    arch: ClassVar[str] = "vgg16"
    weights_url: ClassVar[str] = "https://download.pytorch.org/models/vgg16-397923af.pth"
    first_conv: ClassVar[str] = "features.0"
    head: ClassVar[str] = "classifier.6"

    def __init__(
        self,
        *,
        epochs: int = 5,
        lr: float = 1e-3,
        batch_size: int = 32,
        weights: str | None = None,
        freeze: Sequence[str] = (),
        cam_layer: str | None = None,
        classifier_width: int = 4096,
    ) -> None:
        super().__init__(
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            weights=weights,
            freeze=freeze,
            cam_layer=cam_layer,
        )
        self.classifier_width = classifier_width

    @classmethod
    def conformance_instances(cls, tmp_dir: Path) -> list[TorchvisionCNN]:
        """Return a small instance: a 64-wide classifier (1.6M instead of 120M weights)."""
        return [cls(epochs=1, batch_size=8, classifier_width=64)]

    def _architecture(self, num_outputs: int) -> nn.Module:
        module = super()._architecture(num_outputs)
        width = int(self.classifier_width)
        classifier = module.get_submodule("classifier")
        if width != 4096 and isinstance(classifier, nn.Sequential):
            first = classifier[0]
            in_features = first.in_features if isinstance(first, nn.Linear) else 512 * 7 * 7
            classifier[0] = nn.Linear(in_features, width)
            classifier[3] = nn.Linear(width, width)
            classifier[6] = nn.Linear(width, num_outputs)
        return module


class VGG16BN(VGG16):
    """Torchvision VGG-16 with batch normalisation; CAM layer ``features.42``.

    The same network as :class:`VGG16` with a BatchNorm after every
    convolution (torchvision ``vgg16_bn``). Plain VGG-16 trained from random
    weights on a few hundred images stays at chance (measured on the
    synthetic radiographs at 128 px: accuracy 0.50 after 8 epochs); with batch
    normalisation it trains. ``features.42`` is the ReLU after the last
    convolution (``features.40``) and its BatchNorm (``features.41``).
    """

    name: ClassVar[str] = "torchvision.vgg16_bn"
    citation: ClassVar[str] = (
        "Simonyan, Zisserman. Very Deep Convolutional Networks for Large-Scale Image "
        "Recognition. ICLR 2015; Ioffe, Szegedy. Batch Normalization. ICML 2015."
    )
    tags: ClassVar[ModelTags] = ModelTags(target_layer="features.42")
    arch: ClassVar[str] = "vgg16_bn"
    weights_url: ClassVar[str] = "https://download.pytorch.org/models/vgg16_bn-6c64b313.pth"


class _DenseNet(nn.Module):
    """Torchvision's DenseNet with its final functional in-place ReLU made a module."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        from torchvision.models import densenet121

        base = densenet121(weights=None, num_classes=num_classes)
        self.features = base.features
        self.relu = nn.ReLU()
        self.classifier = base.classifier

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.features(x))
        out = torch.flatten(nn.functional.adaptive_avg_pool2d(out, 1), 1)
        result: Tensor = self.classifier(out)
        return result


class DenseNet121(TorchvisionCNN):
    """Torchvision DenseNet-121; CAM layer ``features.norm5``, the last feature maps.

    Torchvision applies the final ReLU in place inside ``forward``, which breaks
    hooks on ``features.norm5``; this model applies it as an out-of-place
    ``relu`` module instead (same function, same state dict keys).
    """

    name: ClassVar[str] = "torchvision.densenet121"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = (
        "Huang, Liu, van der Maaten, Weinberger. Densely Connected Convolutional Networks. "
        "CVPR 2017."
    )
    tags: ClassVar[ModelTags] = ModelTags(target_layer="features.norm5")
    arch: ClassVar[str] = "densenet121"
    weights_url: ClassVar[str] = "https://download.pytorch.org/models/densenet121-a639ec97.pth"
    first_conv: ClassVar[str] = "features.conv0"
    head: ClassVar[str] = "classifier"

    def _architecture(self, num_outputs: int) -> nn.Module:
        return _DenseNet(num_outputs)
