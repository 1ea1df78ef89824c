"""Toy CAM explainers: Grad-CAM on pixels or token grids, and a generated-sentence explainer."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from harness.contracts import (
    Attribution,
    Batch,
    Explainer,
    ExplainerTags,
    Modality,
    Need,
    Output,
    SupportsTargetLayer,
)
from harness.errors import CapabilityError

if TYPE_CHECKING:
    from harness.contracts import Model

_CITATION = "Selvaraju et al. 2017, Grad-CAM (toy conformance fixture)"


def layer_gradients(model: Model, batch: Batch, targets: Tensor) -> tuple[Tensor, Tensor]:
    """Return the target layer's activation (N, C, h, w) and d logit[target] / d activation."""
    if not isinstance(model, SupportsTargetLayer):
        raise CapabilityError(f"model {model.name!r} has no target layer", plugin=model.name)
    store: dict[str, Tensor] = {}

    def keep(_module: nn.Module, _inputs: object, out: Tensor) -> Tensor:
        if not out.requires_grad:  # a frozen backbone: differentiate from this layer on
            out = out.detach().requires_grad_()
        store["act"] = out
        return out

    handle = model.target_layer().register_forward_hook(keep)
    try:
        with torch.enable_grad():
            logits = model.logits(batch)
            if "act" not in store:
                raise CapabilityError(
                    f"model {model.name!r}: the target layer did not run", plugin=model.name
                )
            picked = logits.gather(1, targets[:, None].long()).sum()
            (grad,) = torch.autograd.grad(picked, store["act"])
    finally:
        handle.remove()
    return store["act"].detach(), grad.detach()


def _weighted_activation(model: Model, batch: Batch, targets: Tensor) -> Tensor:
    """Return the target layer's activations weighted by their mean gradient, (N, h, w)."""
    act, grad = layer_gradients(model, batch, targets)
    return (grad.mean(dim=(2, 3), keepdim=True) * act).sum(dim=1)


def tokens_from_grid(cam: Tensor, seq_len: int) -> Tensor:
    """Map (N, h, w) layer maps to (N, seq_len) token relevance (row-major square grid).

    Token ``l`` of a text-as-image model sits at cell ``(l // side, l % side)``
    with ``side ** 2 == seq_len``; maps at another resolution are resized.
    """
    side = math.isqrt(seq_len)
    if side * side != seq_len:
        raise CapabilityError(
            f"token grid: seq_len {seq_len} - expected a square number of tokens (side x side)"
        )
    if tuple(cam.shape[-2:]) != (side, side):
        cam = F.interpolate(cam[:, None], size=(side, side), mode="bilinear")[:, 0]
    return cam.reshape(cam.shape[0], seq_len)


class ToyGradCAM(Explainer):
    """Grad-CAM: the target layer's activations weighted by their mean gradient.

    On image batches the map is upsampled to pixels; on token batches of a
    text-as-image model it is read back to tokens with :func:`tokens_from_grid`.

    Parameters
    ----------
    relu : bool
        Keep only positive evidence (the original Grad-CAM).

    References
    ----------
    Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
    Gradient-based Localization", ICCV 2017.
    """

    name: ClassVar[str] = "toy.grad_cam"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = _CITATION
    tags: ClassVar[ExplainerTags] = ExplainerTags(
        modalities=frozenset(Modality),
        needs=frozenset({Need.GRADIENTS, Need.TARGET_LAYER}),
        output=frozenset({Output.PIXEL, Output.TOKEN}),
    )

    def __init__(self, *, relu: bool = True) -> None:
        self.relu = relu

    def _explain(self, model: Model, batch: Batch, targets: Tensor) -> Attribution:
        cam = _weighted_activation(model, batch, targets)
        if self.relu:
            cam = cam.clamp(min=0)
        if batch.images is not None:
            size = batch.images.shape[-2:]
            return Attribution(pixels=F.interpolate(cam[:, None], size=size, mode="bilinear")[:, 0])
        if batch.tokens is None:
            raise CapabilityError(
                f"explainer {self.name!r} needs images or tokens", plugin=self.name
            )
        return Attribution(tokens=tokens_from_grid(cam, batch.tokens.shape[1]))


class ToyAttentionSentence(Explainer):
    """A generated-sentence explainer: soft attention over regions plus a templated sentence.

    Gradient-weighted activations are pooled to ``grid x grid`` regions and
    normalised with a softmax (the attention map, returned as pixels); the
    sentence names the most attended quadrant, as paper 001's templated
    explanations name a location.

    Parameters
    ----------
    grid : int
        Regions per side of the attention map.
    temperature : float
        Softmax temperature over regions.

    References
    ----------
    Gale et al., "Producing radiologist-quality reports for interpretable
    artificial intelligence", 2018 (paper 001).
    """

    name: ClassVar[str] = "toy.attention_sentence"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = "Gale et al. 2018, generated explanatory sentences (toy fixture)"
    tags: ClassVar[ExplainerTags] = ExplainerTags(
        modalities=frozenset({Modality.IMAGE}),
        needs=frozenset({Need.GRADIENTS, Need.TARGET_LAYER}),
        output=frozenset({Output.SENTENCE, Output.PIXEL}),
    )

    def __init__(self, *, grid: int = 4, temperature: float = 1.0) -> None:
        self.grid = grid
        self.temperature = temperature

    def _explain(self, model: Model, batch: Batch, targets: Tensor) -> Attribution:
        if batch.images is None:
            raise CapabilityError(f"explainer {self.name!r} needs images", plugin=self.name)
        evidence = _weighted_activation(model, batch, targets)[:, None]
        regions = F.adaptive_avg_pool2d(evidence, self.grid).flatten(1)
        attention = torch.softmax(regions / self.temperature, dim=1)
        square = attention.view(-1, 1, self.grid, self.grid)
        pixels = F.interpolate(square, size=batch.images.shape[-2:], mode="nearest")[:, 0]
        best = attention.argmax(dim=1).tolist()
        half = self.grid / 2
        sentences = tuple(
            f"There is a lesion in the {'upper' if b // self.grid < half else 'lower'} "
            f"{'left' if b % self.grid < half else 'right'} region."
            for b in best
        )
        return Attribution(pixels=pixels, sentences=sentences)
