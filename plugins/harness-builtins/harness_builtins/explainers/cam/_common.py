"""Hook code shared by the CAM explainers: layer lookup, activations, gradients, upsampling."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harness.contracts import Batch, Model, SupportsTargetLayer, SupportsTorchModule
from harness.errors import CapabilityError
from harness_builtins.explainers._common import (
    check_choice,
    images_of,
    submodule,
    target_column,
)
from harness_builtins.explainers.cam._geometry import Geometry, feature_geometry


def cam_layer(model: Model, layer: str | None, who: str) -> nn.Module:
    """Return the layer named ``layer``, or the model's default target layer when None."""
    if layer:
        return submodule(model, layer, who)
    if not isinstance(model, SupportsTargetLayer):
        raise CapabilityError(
            f"explainer {who!r}: model {model.name!r} - expected a model with a target layer "
            "(SupportsTargetLayer), got none. Set the explainer's `layer` parameter.",
            plugin=who,
        )
    return model.target_layer()


def activations_and_gradients(
    model: Model, batch: Batch, targets: Tensor, layer: nn.Module, who: str
) -> tuple[Tensor, Tensor]:
    """Return a layer's activations and the gradient of each row's target logit.

    One forward and one backward pass for the whole batch; rows are independent
    because the model is in eval mode, so the gradient of the summed target
    logits gives every row its own gradient. When the layer runs more than once
    per forward pass, its last call is used. The layer's output is copied before
    the rest of the network sees it, so in-place operations after the layer
    (``ReLU(inplace=True)``) leave the captured activations intact.

    Returns
    -------
    activations, gradients : Tensor
        Both (N, K, h, w), detached.
    """
    images = images_of(batch, who)
    captured: dict[str, Any] = {}

    def hook(_module: nn.Module, _inputs: Any, output: Any) -> Any:
        captured["act"] = output
        # pass a copy on, so an in-place op after the layer (ReLU(inplace=True))
        # cannot overwrite the activations or their autograd version
        return output.clone() if isinstance(output, Tensor) else output

    handle = layer.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            x = images.detach().requires_grad_(True)
            logits = model.logits(batch.with_images(x))
            act = captured.get("act")
            if not isinstance(act, Tensor) or act.dim() != 4:
                got = type(act).__name__ if not isinstance(act, Tensor) else tuple(act.shape)
                raise CapabilityError(
                    f"explainer {who!r}: target layer output - expected a (N, K, h, w) tensor, "
                    f"got {got}. Choose a convolutional layer with the `layer` parameter.",
                    plugin=who,
                )
            score = logits.gather(1, target_column(targets)).sum()
            (grads,) = torch.autograd.grad(score, act)
    finally:
        handle.remove()
    return act.detach(), grads.detach()


UPSAMPLE_MODES: tuple[str, ...] = ("receptive_field", "bilinear")


def layer_geometry(model: Model, layer: nn.Module, images: Tensor, mode: str) -> Geometry | None:
    """Return the geometry of ``layer`` for ``mode="receptive_field"``, else None.

    None also when the model has no torch module or the geometry cannot be
    measured (see :func:`feature_geometry`); :func:`upsample` then resizes plainly.
    """
    if mode != "receptive_field" or not isinstance(model, SupportsTorchModule):
        return None
    return feature_geometry(model.module, layer, images.shape[1])


def cam_setup(
    model: Model, batch: Batch, layer: str | None, mode: str, who: str
) -> tuple[Tensor, nn.Module, Geometry | None]:
    """Return the batch's images, the CAM layer and its geometry for the checked ``mode``.

    The layer is the one named ``layer`` or the model's target layer (see
    :func:`cam_layer`); the geometry is that of :func:`layer_geometry`.
    """
    images = images_of(batch, who)
    module = cam_layer(model, layer, who)
    return images, module, layer_geometry(model, module, images, mode)


def check_upsample(who: str, mode: str) -> None:
    """Raise PluginError unless ``mode`` is one of :data:`UPSAMPLE_MODES` (``check_params``)."""
    check_choice(who, "upsample", mode, UPSAMPLE_MODES)


def upsample(cam: Tensor, size: tuple[int, int], geometry: Geometry | None = None) -> Tensor:
    """Resize (N, h, w) maps to (N, H, W), placing each cell at its receptive-field centre.

    With ``geometry = (stride_y, offset_y, stride_x, offset_x)``, output pixel
    ``(y, x)`` reads the map bilinearly at the fractional cell
    ``((y - offset_y) / stride_y, (x - offset_x) / stride_x)``, clamped to the
    outermost cells. Without it, plain bilinear resizing like Captum's
    ``interpolate`` (``align_corners=False``), which is the same sampling with
    ``stride = H / h`` and ``offset = (stride - 1) / 2``.
    """
    if geometry is None:
        return F.interpolate(cam.unsqueeze(1), size=size, mode="bilinear", align_corners=False)[
            :, 0
        ]
    n, h, w = cam.shape
    stride_y, offset_y, stride_x, offset_x = geometry
    ys = torch.arange(size[0], device=cam.device, dtype=cam.dtype)
    xs = torch.arange(size[1], device=cam.device, dtype=cam.dtype)
    # grid_sample with align_corners=True maps -1 / +1 to the centres of the first / last cell
    gy = (ys - offset_y) / stride_y * (2 / max(h - 1, 1)) - 1
    gx = (xs - offset_x) / stride_x * (2 / max(w - 1, 1)) - 1
    grid = torch.stack((gx[None, :].expand(size[0], -1), gy[:, None].expand(-1, size[1])), -1)
    out = F.grid_sample(
        cam.unsqueeze(1),
        grid.expand(n, -1, -1, -1),
        mode="bilinear",
        padding_mode="border",
        align_corners=True,
    )
    return out[:, 0]
