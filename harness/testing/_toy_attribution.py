"""Toy attribution explainers: input x gradient (pixels) and token occlusion (black-box)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor

from harness.contracts import Attribution, Batch, Explainer, ExplainerTags, Modality, Need, Output
from harness.errors import CapabilityError

if TYPE_CHECKING:
    from harness.contracts import Model


class ToyInputXGradient(Explainer):
    """Input times the gradient of the target logit, per channel (N, C, H, W).

    Tie-free and deterministic, which makes it the reference attribution the
    kit feeds to explanation metrics.

    References
    ----------
    Shrikumar et al., "Not Just a Black Box: Learning Important Features
    Through Propagating Activation Differences", 2016.
    """

    name: ClassVar[str] = "toy.input_x_gradient"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = "Shrikumar et al. 2016, input x gradient (toy fixture)"
    tags: ClassVar[ExplainerTags] = ExplainerTags(
        modalities=frozenset({Modality.IMAGE}),
        needs=frozenset({Need.GRADIENTS}),
        output=frozenset({Output.PIXEL}),
    )

    def _explain(self, model: Model, batch: Batch, targets: Tensor) -> Attribution:
        if batch.images is None:
            raise CapabilityError(f"explainer {self.name!r} needs images", plugin=self.name)
        x = batch.images.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            logits = model.logits(batch.with_images(x))
            (grad,) = torch.autograd.grad(logits.gather(1, targets[:, None]).sum(), x)
        return Attribution(pixels=x.detach() * grad)


class ToyTokenOcclusion(Explainer):
    """Drop in the target's logit when each token in turn is replaced by padding.

    Model-agnostic: it only calls ``model.logits``, on all ``N x L`` occluded
    copies stacked into batches of ``chunk_size`` rows.

    Parameters
    ----------
    chunk_size : int
        Rows per forward pass.

    References
    ----------
    Zeiler and Fergus, "Visualizing and Understanding Convolutional
    Networks", ECCV 2014 (occlusion), applied to tokens.
    """

    name: ClassVar[str] = "toy.token_occlusion"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = "Zeiler and Fergus 2014, occlusion (toy fixture, tokens)"
    tags: ClassVar[ExplainerTags] = ExplainerTags(
        modalities=frozenset({Modality.TEXT, Modality.IMAGE_TEXT}),
        output=frozenset({Output.TOKEN}),
    )

    def __init__(self, *, chunk_size: int = 1024) -> None:
        self.chunk_size = chunk_size

    def _target_logits(self, model: Model, batch: Batch, targets: Tensor) -> Tensor:
        out = []
        for start in range(0, len(batch), self.chunk_size):
            rows = torch.arange(start, min(start + self.chunk_size, len(batch)))
            logits = model.logits(batch.index(rows))
            out.append(logits.gather(1, targets[rows.to(targets.device), None])[:, 0])
        return torch.cat(out)

    def _explain(self, model: Model, batch: Batch, targets: Tensor) -> Attribution:
        if batch.tokens is None:
            raise CapabilityError(f"explainer {self.name!r} needs token ids", plugin=self.name)
        n, length = batch.tokens.shape
        occluded = batch.tokens.repeat_interleave(length, dim=0)
        rows = torch.arange(n * length, device=occluded.device)
        occluded[rows, rows % length] = 0
        copies = replace(batch.repeat_interleave(length), tokens=occluded)
        with torch.no_grad():
            base = self._target_logits(model, batch, targets)
            drop = base.repeat_interleave(length) - self._target_logits(
                model, copies, targets.repeat_interleave(length)
            )
        return Attribution(tokens=drop.view(n, length))
