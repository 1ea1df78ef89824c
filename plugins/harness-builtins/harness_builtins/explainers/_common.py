"""Helpers shared by the built-in explainers: Captum forward closures, checks, baselines.

Every explainer calls the model through ``model.logits(batch.with_images(x))`` (or,
without gradients, :func:`harness.inference.inference_logits`) so that models reading
more than the image (tokens of a report, say) see each perturbed or interpolated image
together with its own sample's other inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from harness.contracts import Batch, Model, SupportsTorchModule
from harness.errors import CapabilityError, PluginError, did_you_mean
from harness.inference import inference_logits

ForwardFunc = Callable[[Tensor, Tensor], Tensor]

BASELINES: tuple[str, ...] = ("zero", "mean", "min")


def captum_forward(model: Model, batch: Batch) -> tuple[ForwardFunc, Tensor]:
    """Return a Captum forward function ``f(images, rows)`` and the batch's row index.

    Captum expands its inputs (interpolation steps, noise samples, perturbations)
    and expands every tensor of ``additional_forward_args`` in the same order.
    Passing the row index ``rows`` as the only additional argument lets the
    closure select the matching batch rows (tokens, texts, ids) for whatever
    expansion Captum made, so ``len(batch)`` always equals the number of images.
    Calls without gradients (LIME, KernelSHAP, occlusion) run through the
    harness's fastest verified graph of the model when one applies
    (:func:`harness.inference.inference_logits`).

    Parameters
    ----------
    model : Model
        The model to explain.
    batch : Batch
        The batch on the model's device.

    Returns
    -------
    forward : callable
        ``forward(images, rows) -> logits``.
    rows : Tensor
        ``arange(N)`` on the model's device; pass it as ``additional_forward_args=(rows,)``.
    """
    rows = torch.arange(len(batch), device=model.device)

    def forward(images: Tensor, index: Tensor) -> Tensor:
        sub = (batch if index is rows else batch.index(index)).with_images(images)
        if torch.is_grad_enabled():
            return model.logits(sub)
        return inference_logits(model, sub)

    return forward, rows


def images_of(batch: Batch, who: str) -> Tensor:
    """Return the batch's (N, C, H, W) images or raise CapabilityError."""
    if batch.images is None or batch.images.dim() != 4:
        got = None if batch.images is None else tuple(batch.images.shape)
        raise CapabilityError(
            f"explainer {who!r}: batch images - expected a (N, C, H, W) tensor, got {got}.",
            plugin=who,
        )
    return batch.images


def torch_module(model: Model, who: str) -> nn.Module:
    """Return ``model.module`` or raise CapabilityError for a model without one."""
    if not isinstance(model, SupportsTorchModule):
        raise CapabilityError(
            f"explainer {who!r}: model {model.name!r} - expected a torch-backed model "
            "(with a .module), got a black-box model.",
            plugin=who,
        )
    return model.module


def submodule(model: Model, dotted: str, who: str) -> nn.Module:
    """Return the layer of ``model`` named ``dotted`` or raise PluginError with suggestions.

    A misspelt layer is a configuration error: the cell fails, it is not skipped.
    """
    module = torch_module(model, who)
    try:
        return module.get_submodule(dotted)
    except AttributeError as exc:
        names = [n for n, _ in module.named_modules() if n]
        raise PluginError(
            f"explainer {who!r}: layer - no layer named {dotted!r} in model {model.name!r}."
            f"{did_you_mean(dotted, names)}",
            plugin=who,
        ) from exc


def check_choice(who: str, param: str, value: str, choices: Sequence[str]) -> None:
    """Raise PluginError when a string parameter is not one of ``choices``."""
    if value not in choices:
        raise PluginError(
            f"explainer {who!r}: {param} - expected one of {sorted(choices)}, got {value!r}.",
            plugin=who,
        )


def check_positive(who: str, param: str, value: float) -> None:
    """Raise PluginError when a numeric parameter is not strictly positive."""
    if not value > 0:
        raise PluginError(
            f"explainer {who!r}: {param} - expected a positive number, got {value!r}.",
            plugin=who,
        )


def check_at_least(who: str, param: str, value: float, minimum: float) -> None:
    """Raise PluginError when a numeric parameter is below ``minimum``."""
    if not value >= minimum:
        raise PluginError(
            f"explainer {who!r}: {param} - expected a number >= {minimum}, got {value!r}.",
            plugin=who,
        )


def baseline_images(images: Tensor, kind: str) -> Tensor:
    """Return a baseline the shape of ``images``: zeros, or each image's mean or minimum.

    ``"min"`` is the per-image minimum, which is what Quantus calls "black".
    """
    if kind == "zero":
        return torch.zeros_like(images)
    dims = tuple(range(1, images.dim()))
    value = (
        images.mean(dim=dims, keepdim=True)
        if kind == "mean"
        else images.amin(dim=dims, keepdim=True)
    )
    return value.expand_as(images).clone()


def target_column(targets: Tensor) -> Tensor:
    """Return ``targets`` as an (N, 1) int64 column for ``gather``."""
    return targets.reshape(-1, 1).long()
