"""Grad-CAM and Grad-CAM++ against hand-computed maps, Captum, and per-target behaviour."""

from __future__ import annotations

import pytest
import torch
from _explainer_toys import TinyCNN, Wrapped, info_for, make_batch
from captum.attr import LayerAttribution, LayerGradCam
from harness_builtins.explainers.cam.grad_cam import GradCAM
from harness_builtins.explainers.cam.grad_cam_plus_plus import (
    GradCAMPlusPlus,
    grad_cam_plus_plus_weights,
)
from torch import Tensor, nn

from harness.contracts import Batch, ModelTags
from harness.errors import CapabilityError, PluginError


def _tiny_cnn_terms(model: TinyCNN, batch: Batch, targets: Tensor) -> tuple[Tensor, Tensor]:
    """Activations A of conv2 and dS/dA in closed form (GAP + linear head, no autograd).

    S_c = fc_w[c] . mean_ij relu(A)_kij + b_c, so dS/dA_kij = fc_w[c, k] 1[A_kij > 0] / (h w).
    """
    net = model.module
    with torch.no_grad():
        act = net.conv2(net.relu1(net.conv1(batch.images)))
    h, w = act.shape[-2:]
    fc_w = net.fc.weight[targets].detach()
    grads = fc_w[:, :, None, None] * (act > 0).float() / (h * w)
    return act, grads


def _resize_matrix(size: int, cells: int, stride: float, offset: float) -> Tensor:
    """(size, cells) linear-interpolation weights: pixel p reads cell (p - offset) / stride."""
    u = ((torch.arange(size, dtype=torch.float64) - offset) / stride).clamp(0, cells - 1)
    lo = u.floor().long()
    hi = (lo + 1).clamp(max=cells - 1)
    frac = u - lo
    m = torch.zeros(size, cells, dtype=torch.float64)
    m[torch.arange(size), lo] += 1 - frac
    m[torch.arange(size), hi] += frac
    return m


def _up(cam: Tensor, size: int) -> Tensor:
    """Place TinyCNN's conv2 cells at their receptive-field centres: pixel 2 i (k3 p1 convs)."""
    m = _resize_matrix(size, cam.shape[-1], 2.0, 0.0).to(cam.dtype)
    return m @ cam @ m.T


def test_grad_cam_equals_hand_computed_cam(tiny_cnn: TinyCNN, batch: Batch) -> None:
    targets = torch.tensor([0, 1, 2, 1])
    act, grads = _tiny_cnn_terms(tiny_cnn, batch, targets)
    weights = grads.mean(dim=(2, 3))
    expected = _up((weights[:, :, None, None] * act).sum(1).clamp(min=0), 16)
    got = GradCAM().explain(tiny_cnn, batch, targets).pixels
    assert got is not None and got.shape == (4, 16, 16)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7)
    assert float(expected.abs().sum()) > 0


def test_grad_cam_equals_captum_layer_grad_cam(resnet18) -> None:
    batch32 = make_batch(4, 32)
    images = batch32.images
    targets = torch.tensor([0, 1, 1, 0])
    net = resnet18.module
    ref = LayerGradCam(net, net.layer3).attribute(images, target=targets, relu_attributions=True)
    ref = LayerAttribution.interpolate(ref, (32, 32), "bilinear")[:, 0]
    got = GradCAM(layer="layer3", upsample="bilinear").explain(resnet18, batch32, targets).pixels
    torch.testing.assert_close(got, ref.detach(), rtol=1e-5, atol=1e-7)


def test_grad_cam_plus_plus_matches_closed_form(tiny_cnn: TinyCNN, batch: Batch) -> None:
    targets = torch.tensor([2, 0, 1, 2])
    act, g = _tiny_cnn_terms(tiny_cnn, batch, targets)
    denom = 2 * g**2 + act.sum(dim=(2, 3), keepdim=True) * g**3
    alpha = torch.where(g != 0, g**2 / torch.where(denom == 0, 1.0, denom), 0.0)
    weights = (alpha * g.clamp(min=0)).sum(dim=(2, 3))
    expected = _up((weights[:, :, None, None] * act).sum(1).clamp(min=0), 16)
    got = GradCAMPlusPlus().explain(tiny_cnn, batch, targets).pixels
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7)
    assert float(expected.abs().sum()) > 0


def _unit(maps: Tensor) -> Tensor:
    return maps / maps.flatten(1).amax(dim=1).clamp(min=1e-30)[:, None, None]


def test_grad_cam_plus_plus_agrees_with_one_channel_and_differs_with_many(batch: Batch) -> None:
    single = TinyCNN(width=1, seed=3)
    single.build(info_for(3))
    target = int(single.module.fc.weight[:, 0].argmax())
    targets = torch.full((4,), target)
    assert float(single.module.fc.weight[target, 0]) > 0
    a = GradCAM().explain(single, batch, targets).pixels
    b = GradCAMPlusPlus().explain(single, batch, targets).pixels
    torch.testing.assert_close(_unit(a), _unit(b), rtol=1e-4, atol=1e-6)
    assert int((a.flatten(1).amax(dim=1) > 0).sum()) >= 2

    many = TinyCNN(width=8, seed=0)
    many.build(info_for(3))
    targets = torch.tensor([0, 1, 2, 0])
    assert (many.module.fc.weight < 0).any()  # mixed-sign channel gradients
    a = GradCAM(relu=False).explain(many, batch, targets).pixels
    b = GradCAMPlusPlus(relu=False).explain(many, batch, targets).pixels
    assert not torch.allclose(_unit(a.abs()), _unit(b.abs()), atol=1e-2)


@pytest.mark.parametrize("cls", [GradCAM, GradCAMPlusPlus])
def test_maps_depend_on_the_target(cls: type, tiny_cnn: TinyCNN, batch: Batch) -> None:
    first = cls(relu=False).explain(tiny_cnn, batch, torch.zeros(4, dtype=torch.long)).pixels
    second = cls(relu=False).explain(tiny_cnn, batch, torch.ones(4, dtype=torch.long)).pixels
    assert not torch.allclose(first, second)


@pytest.mark.parametrize("cls", [GradCAM, GradCAMPlusPlus])
def test_multilabel_rows_explain_their_own_label(cls: type, tiny_multilabel: TinyCNN) -> None:
    base = make_batch(2, 16, seed=5)
    rows = base.index([0, 0, 1, 1])
    labels = torch.tensor([0, 3, 0, 3])
    got = cls(relu=False).explain(tiny_multilabel, rows, labels).pixels
    for i in range(4):
        alone = cls(relu=False).explain(tiny_multilabel, rows.index([i]), labels[i : i + 1]).pixels
        torch.testing.assert_close(got[i : i + 1], alone, rtol=1e-5, atol=1e-7)
    assert not torch.allclose(got[0], got[1])


@pytest.mark.parametrize("cls", [GradCAM, GradCAMPlusPlus])
def test_multimodal_rows_use_their_own_tokens(cls: type, multimodal, mm_batch: Batch) -> None:
    targets = torch.tensor([0, 1, 2, 0])
    got = cls(relu=False).explain(multimodal, mm_batch, targets).pixels
    for i in range(4):
        alone = cls(relu=False).explain(multimodal, mm_batch.index([i]), targets[i : i + 1])
        torch.testing.assert_close(got[i : i + 1], alone.pixels, rtol=1e-5, atol=1e-7)
    other = mm_batch.index([0, 1, 2, 3])
    other = Batch(
        ids=other.ids, labels=other.labels, images=other.images, tokens=other.tokens.flip(0)
    )
    assert not torch.allclose(got, cls(relu=False).explain(multimodal, other, targets).pixels)


def test_layer_parameter_overrides_and_suggests(tiny_cnn: TinyCNN, batch: Batch) -> None:
    targets = torch.zeros(4, dtype=torch.long)
    default = GradCAM().explain(tiny_cnn, batch, targets).pixels
    conv1 = GradCAM(layer="conv1").explain(tiny_cnn, batch, targets).pixels
    assert conv1.shape == default.shape and not torch.allclose(conv1, default)
    with pytest.raises(PluginError, match="conv3.*Did you mean: conv") as err:
        GradCAMPlusPlus(layer="conv3").explain(tiny_cnn, batch, targets)
    assert not isinstance(err.value, CapabilityError)  # a misspelt layer fails, never skips


class _NoLayer(TinyCNN):
    tags = ModelTags(target_layer=None)


@pytest.mark.parametrize("cls", [GradCAM, GradCAMPlusPlus])
def test_model_without_target_layer_is_a_capability_error(cls: type, batch: Batch) -> None:
    model = _NoLayer()
    model.build(info_for(3))
    with pytest.raises(CapabilityError, match="target layer"):
        cls().explain(model, batch, torch.zeros(4, dtype=torch.long))


@pytest.mark.parametrize("cls", [GradCAM, GradCAMPlusPlus])
def test_hooks_are_removed_and_outputs_unchanged(
    cls: type, tiny_cnn: TinyCNN, batch: Batch
) -> None:
    before = tiny_cnn.logits(batch).detach()
    cls().explain(tiny_cnn, batch, torch.zeros(4, dtype=torch.long))
    assert all(not m._forward_hooks and not m._backward_hooks for m in tiny_cnn.module.modules())
    assert torch.equal(before, tiny_cnn.logits(batch).detach())
    assert all(p.grad is None for p in tiny_cnn.module.parameters())


class _Layer2(Wrapped):
    tags = ModelTags(target_layer="2")


def _conv_stack(inplace: bool) -> _Layer2:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(inplace=inplace),
        nn.Conv2d(4, 6, 3, padding=1),
        nn.ReLU(inplace=inplace),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, 3),
    )
    model = _Layer2()
    model.net = net.eval()
    model.build(info_for(3))
    return model


@pytest.mark.parametrize("cls", [GradCAM, GradCAMPlusPlus])
def test_in_place_relu_after_the_target_layer_changes_nothing(cls: type, batch: Batch) -> None:
    targets = torch.tensor([0, 1, 2, 0])
    plain = cls(relu=False).explain(_conv_stack(False), batch, targets).pixels
    in_place = cls(relu=False).explain(_conv_stack(True), batch, targets).pixels
    assert torch.equal(plain, in_place) and bool((plain < 0).any())


def test_grad_cam_plus_plus_weights_survive_half_precision() -> None:
    """Gradients of 1e-3 have cubes (1e-9) that are 0 in float16; the weights are computed in float32."""
    g = torch.Generator().manual_seed(0)
    activations = torch.rand(2, 3, 7, 7, generator=g) * 40  # sums of about 1000 per channel
    gradients = (torch.rand(2, 3, 7, 7, generator=g) - 0.3) * 2e-3
    exact = grad_cam_plus_plus_weights(activations.double(), gradients.double())
    half = grad_cam_plus_plus_weights(activations.half(), gradients.half())
    assert half.dtype == torch.float32
    torch.testing.assert_close(half.double(), exact, rtol=2e-3, atol=1e-9)
