"""Shared LRP machinery: canonizer choice by architecture and one Zennit backward pass."""

from __future__ import annotations

import abc
import logging
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor, nn

from harness.contracts import Attribution, Batch, Explainer, ExplainerTags, Modality, Model, Need
from harness.errors import CapabilityError
from harness_builtins.explainers._common import images_of, target_column, torch_module

if TYPE_CHECKING:
    from zennit.canonizers import Canonizer
    from zennit.core import Composite

log = logging.getLogger(__name__)

UNSUPPORTED_ARCHITECTURES: tuple[str, ...] = ("DenseNet",)


def _architecture(module: nn.Module) -> str:
    """Name the architecture family of ``module``: resnet, vgg, densenet or generic."""
    from torchvision.models import VGG, DenseNet
    from torchvision.models.densenet import _DenseBlock, _DenseLayer
    from torchvision.models.resnet import BasicBlock, Bottleneck

    modules = list(module.modules())
    if any(isinstance(m, (DenseNet, _DenseBlock, _DenseLayer)) for m in modules):
        return "densenet"
    if any(isinstance(m, (BasicBlock, Bottleneck)) for m in modules):
        return "resnet"
    if any(isinstance(m, VGG) for m in modules):
        return "vgg"
    return "generic"


def canonizers_for(module: nn.Module, who: str) -> list[Canonizer]:
    """Return the Zennit canonizers that make LRP correct for ``module``'s architecture.

    - torchvision ResNet: ``ResNetCanonizer`` (BatchNorm merged into the preceding
      convolution; the skip connection's addition becomes a ``Sum`` module that the
      composite's normalising rule handles).
    - torchvision VGG: ``VGGCanonizer`` (sequential BatchNorm merge).
    - DenseNet: refused. Its pre-activation BatchNorm sits *before* each
      convolution, which no Zennit 0.5 canonizer merges, and its dense
      concatenations are not canonised either; shipping that LRP would be
      silently wrong, so a :class:`CapabilityError` skips the cell.
    - anything else: ``SequentialMergeBatchNorm``, correct for plain feed-forward
      stacks; a residual ``+`` written inside a ``forward`` is invisible to it.
    """
    from zennit.canonizers import SequentialMergeBatchNorm
    from zennit.torchvision import ResNetCanonizer, VGGCanonizer

    arch = _architecture(module)
    if arch == "densenet":
        raise CapabilityError(
            f"explainer {who!r}: model architecture - expected ResNet, VGG or a plain sequential "
            "network, got DenseNet, for which Zennit 0.5 has no canonizer; LRP would be "
            "silently wrong, so this cell is skipped.",
            plugin=who,
        )
    if arch == "resnet":
        return [ResNetCanonizer()]
    if arch == "vgg":
        return [VGGCanonizer()]
    log.info("%s: generic architecture, merging sequential BatchNorm layers only", who)
    return [SequentialMergeBatchNorm()]


class ZennitLRP(Explainer, abc.ABC):
    """Base of the Zennit LRP explainers; subclasses build the composite.

    The explained logit (a class, or one label of a multi-label model) is the
    relevance put into the output, so the input relevance sums approximately to
    that logit (exactly only for rules that neither absorb bias nor drop negative
    contributions). Canonizers and rule hooks modify the module only inside the
    Zennit context and are removed when it exits, leaving parameters unchanged.
    """

    tags: ClassVar[ExplainerTags] = ExplainerTags(
        modalities=frozenset({Modality.IMAGE}),
        needs=frozenset({Need.GRADIENTS}),
        deterministic=True,
    )
    unsupported_architectures: ClassVar[tuple[str, ...]] = UNSUPPORTED_ARCHITECTURES

    @abc.abstractmethod
    def _composite(self, images: Tensor, canonizers: list[Canonizer]) -> Composite:
        """Return the Zennit composite for ``images`` with ``canonizers``."""

    def _explain(self, model: Model, batch: Batch, targets: Tensor) -> Attribution:
        images = images_of(batch, self.name)
        module = torch_module(model, self.name)
        composite = self._composite(images.detach(), canonizers_for(module, self.name))
        col = target_column(targets)
        with torch.enable_grad(), composite.context(module):
            x = images.detach().requires_grad_(True)
            logits = model.logits(batch.with_images(x))
            seed = torch.zeros_like(logits).scatter(1, col, logits.gather(1, col).detach())
            (relevance,) = torch.autograd.grad(logits, x, grad_outputs=seed)
        return Attribution(pixels=relevance.detach())
