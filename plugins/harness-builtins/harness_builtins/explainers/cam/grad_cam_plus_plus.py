"""Grad-CAM++: CAM weights from the closed-form higher-order gradient terms."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch
from torch import Tensor

from harness.contracts import Attribution, Batch, Explainer, ExplainerTags, Modality, Model, Need
from harness_builtins.explainers.cam._common import (
    activations_and_gradients,
    cam_setup,
    check_upsample,
    upsample,
)


def grad_cam_plus_plus_weights(activations: Tensor, gradients: Tensor) -> Tensor:
    """Return the (N, K) Grad-CAM++ channel weights.

    With ``Y = exp(S)`` for the explained logit ``S`` and ``g = dS/dA``, the
    paper's closed form gives

    ``alpha_kij = g_kij^2 / (2 g_kij^2 + sum_ab A_kab g_kij^3)``

    and ``w_k = sum_ij alpha_kij relu(dY/dA_kij) = exp(S) sum_ij alpha_kij relu(g_kij)``.
    The factor ``exp(S)`` is one positive number per row: it does not change the
    map's shape, and it overflows for large logits, so it is left out (as the
    reference implementations do). ``alpha`` is 0 where its denominator is 0.
    Half-precision inputs are computed in float32 (the weights are returned so).
    """
    exact = torch.promote_types(gradients.dtype, torch.float32)  # g^3 underflows in half precision
    gradients, activations = gradients.to(exact), activations.to(exact)
    g2 = gradients.pow(2)
    g3 = gradients.pow(3)
    act_sum = activations.sum(dim=(2, 3), keepdim=True)
    denom = 2 * g2 + act_sum * g3
    safe = torch.where(denom != 0, denom, torch.ones_like(denom))
    alpha = torch.where(denom != 0, g2 / safe, torch.zeros_like(denom))
    return (alpha * gradients.clamp(min=0)).sum(dim=(2, 3))


class GradCAMPlusPlus(Explainer):
    """Grad-CAM++ class activation map of a convolutional layer (own hook implementation).

    Channel weights count each location's positive gradient, normalised by the
    closed-form ``alpha`` coefficients, so several instances of a class all
    contribute to the map (see :func:`grad_cam_plus_plus_weights`). One forward
    and one backward pass for the whole batch; the map is ReLU'd and upsampled
    to the input size.

    By default each cell of the layer is placed at the centre of its receptive
    field before bilinear interpolation (``upsample="receptive_field"``). Plain
    bilinear resizing centres cell ``i`` of a layer with total stride ``s``
    at pixel ``s i + (s - 1) / 2``. That holds for VGG's 2x2 pooling, but the
    padded stride-2 convolutions and pooling of a ResNet centre it at ``s i``,
    so there the plain map is shifted by ``(s - 1) / 2`` pixels (7.5 px at
    ``layer3``; DenseNet-121's last block is off by 1.5 px), which costs much
    localisation at low resolution (ResNet18 ``layer3`` on the quickstart's
    128 px lesions: Grad-CAM pointing game 0.46 plain, 0.85 aligned, mean of 3
    seeds). The placement is measured once per architecture and layer on a
    linearised copy of the network (see ``cam/_geometry.py``); a network where
    that fails gets plain resizing.

    Parameters
    ----------
    relu : bool, default=True
        Keep only positive evidence, as in the paper.
    layer : str or None, default=None
        Dotted name of the layer to explain; None uses the model's target layer.
    upsample : {"receptive_field", "bilinear"}, default="receptive_field"
        ``"receptive_field"`` places each cell at its receptive-field centre;
        ``"bilinear"`` is the classic resizing with ``align_corners=False``.

    References
    ----------
    A. Chattopadhay, A. Sarkar, P. Howlader and V. N. Balasubramanian,
    "Grad-CAM++: Generalized Gradient-Based Visual Explanations for Deep
    Convolutional Networks", WACV 2018.
    """

    name: ClassVar[str] = "cam.grad_cam_plus_plus"
    version: ClassVar[str] = "2"
    citation: ClassVar[str] = (
        "Chattopadhay et al., Grad-CAM++: Generalized Gradient-Based Visual Explanations "
        "for Deep Convolutional Networks, WACV 2018"
    )
    tags: ClassVar[ExplainerTags] = ExplainerTags(
        modalities=frozenset({Modality.IMAGE, Modality.IMAGE_TEXT}),
        needs=frozenset({Need.GRADIENTS, Need.TARGET_LAYER}),
        deterministic=True,
    )

    def __init__(
        self, *, relu: bool = True, layer: str | None = None, upsample: str = "receptive_field"
    ) -> None:
        self.relu = relu
        self.layer = layer
        self.upsample = upsample

    @classmethod
    def conformance_instances(cls, tmp_dir: Path) -> list[GradCAMPlusPlus]:
        """Return small instances for the conformance kit."""
        return [cls(), cls(upsample="bilinear")]

    def check_params(self) -> None:
        """Check the upsampling mode."""
        check_upsample(self.name, self.upsample)

    def _explain(self, model: Model, batch: Batch, targets: Tensor) -> Attribution:
        images, layer, geometry = cam_setup(model, batch, self.layer, self.upsample, self.name)
        act, grads = activations_and_gradients(model, batch, targets, layer, self.name)
        weights = grad_cam_plus_plus_weights(act, grads)
        cam = torch.einsum("nk,nkhw->nhw", weights, act)
        if self.relu:
            cam = cam.clamp(min=0)
        size = (images.shape[-2], images.shape[-1])
        return Attribution(pixels=upsample(cam, size, geometry))
