"""Receptive-field geometry of CAM layers, and the upsampling that uses it.

References are analytic: a k3 p1 stride-2 convolution or a k3 s2 p1 max-pool
centres output cell i on input cell 2 i, a k7 s2 p3 stem too, and a 2x2
stride-2 pool centres it on 2 i + 0.5.
"""

from __future__ import annotations

import copy
import logging
import weakref
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from _explainer_toys import ResNet18, TinyCNN, ToyMultimodal, info_for, make_batch, wrap
from harness_builtins.explainers.cam import _geometry
from harness_builtins.explainers.cam._common import upsample
from harness_builtins.explainers.cam._geometry import feature_geometry
from harness_builtins.explainers.cam.grad_cam import GradCAM
from harness_builtins.explainers.cam.grad_cam_plus_plus import GradCAMPlusPlus
from torch import Tensor, nn

from harness.contracts import Batch, Modality
from harness.errors import PluginError


@pytest.mark.parametrize(
    ("layer", "stride"), [("layer1", 4), ("layer2", 8), ("layer3", 16), ("layer4", 32)]
)
def test_resnet18_cells_are_centred_at_stride_times_index(
    resnet18: ResNet18, layer: str, stride: int
) -> None:
    net = resnet18.module
    got = feature_geometry(net, net.get_submodule(layer), 1)
    assert got == pytest.approx((stride, 0.0, stride, 0.0), abs=1e-3)


def _vgg_stack(blocks: int, batchnorm: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = 1
    for b in range(blocks):
        layers += [nn.Conv2d(width, 4 + b, 3, padding=1)]
        layers += [nn.BatchNorm2d(4 + b)] if batchnorm else []
        layers += [nn.ReLU(), nn.Conv2d(4 + b, 4 + b, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        width = 4 + b
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(7, 2))


@pytest.mark.parametrize("blocks", [1, 2, 3, 4])
@pytest.mark.parametrize("batchnorm", [False, True])
def test_vgg_cells_are_centred_half_a_stride_in(blocks: int, batchnorm: bool) -> None:
    net = _vgg_stack(blocks, batchnorm).eval()
    pool = [m for m in net if isinstance(m, nn.MaxPool2d)][-1]
    stride = 2**blocks
    got = feature_geometry(net, pool, 1)  # Flatten + Linear reject any other size: never run
    assert got == pytest.approx((stride, (stride - 1) / 2, stride, (stride - 1) / 2), abs=1e-3)


def test_anisotropic_strides_are_measured_per_axis() -> None:
    net = nn.Sequential(nn.Conv2d(2, 3, (3, 5), stride=(2, 4), padding=(1, 2)), nn.ReLU())
    assert feature_geometry(net, net[1], 2) == pytest.approx((2, 0, 4, 0), abs=1e-3)
    net = nn.Sequential(nn.Conv2d(1, 3, (3, 2), stride=(1, 2)), nn.AvgPool2d((2, 1)))
    assert feature_geometry(net, net[1], 1) == pytest.approx((2, 1.5, 2, 0.5), abs=1e-3)


def test_densenet121_final_features() -> None:
    from torchvision.models import densenet121

    net = densenet121(num_classes=2).eval()
    # stem 4 i, then each of 3 transitions' 2x2 average pools: s (2 i + 0.5) + o
    assert feature_geometry(net, net.features.norm5, 3) == pytest.approx((32, 14, 32, 14), abs=1e-2)
    assert feature_geometry(net, net.features.transition1, 3) == pytest.approx(
        (8, 2, 8, 2), abs=1e-3
    )


@pytest.fixture
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget geometries measured by earlier tests, so this test measures."""
    monkeypatch.setattr(_geometry, "_CACHE", OrderedDict())
    monkeypatch.setattr(_geometry, "_SEEN", weakref.WeakKeyDictionary())


@pytest.mark.usefixtures("fresh_cache")
def test_the_real_model_is_left_untouched() -> None:
    model = ResNet18(seed=4)
    model.build(info_for(2))
    net = model.module.train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    types = [type(m) for m in net.modules()]
    flags = [p.requires_grad for p in net.parameters()]
    assert feature_geometry(net, net.layer2, 1) == pytest.approx((8, 0, 8, 0), abs=1e-3)
    after = net.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert types == [type(m) for m in net.modules()]
    assert flags == [p.requires_grad for p in net.parameters()]
    assert net.training and all(m.training for m in net.modules())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())
    assert all(p.grad is None for p in net.parameters())


@pytest.mark.usefixtures("fresh_cache")
def test_geometry_is_measured_once_per_architecture() -> None:
    net = nn.Sequential(nn.Conv2d(5, 2, 3, stride=2, padding=1), nn.Conv2d(2, 2, 3, stride=3))
    calls: list[int] = []
    net[1].register_forward_hook(lambda *_: calls.append(1))  # copied along with the module
    first = feature_geometry(net, net[1], 5)
    assert first == pytest.approx((6, 2, 6, 2), abs=1e-3) and calls
    count = len(calls)
    assert feature_geometry(net, net[1], 5) == first
    twin = copy.deepcopy(net)
    nn.init.normal_(twin.get_parameter("0.weight"))  # other weights, same architecture
    assert feature_geometry(twin, twin[1], 5) == first
    assert len(calls) == count


class _FunctionalPool(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.conv(F.max_pool2d(x, 3, 2, 1))  # a function: not linearised
        return out


class _TupleLayer(nn.Module):
    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x, x


@pytest.mark.usefixtures("fresh_cache")
def test_unmeasurable_networks_fall_back_to_none(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    functional = _FunctionalPool()
    assert feature_geometry(functional, functional.conv, 1) is None
    tuple_net = nn.Sequential(nn.Conv2d(1, 2, 3), _TupleLayer())
    assert feature_geometry(tuple_net, tuple_net[1], 1) is None
    stranger = nn.Conv2d(1, 1, 3)
    assert feature_geometry(tuple_net, stranger, 1) is None
    multimodal = ToyMultimodal()
    multimodal.build(info_for(3, modality=Modality.IMAGE_TEXT))  # forward needs tokens too
    assert feature_geometry(multimodal.module, multimodal.module.conv, 1) is None
    assert "refuses an image alone" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # known limits


class _Unexpected(nn.Sequential):
    def forward(self, x: Tensor) -> Tensor:
        raise RuntimeError("Expected all tensors to be on the same device")


@pytest.mark.usefixtures("fresh_cache")
def test_an_unexpected_failure_is_a_warning_naming_the_layer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    net = _Unexpected(nn.Conv2d(1, 2, 3))
    assert feature_geometry(net, net[0], 1) is None
    (record,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "layer '0' of _Unexpected" in record.getMessage()
    assert "RuntimeError: Expected all tensors to be on the same device" in record.getMessage()


def test_one_hot_map_peaks_at_the_cell_centre() -> None:
    cam = torch.zeros(2, 8, 8)
    cam[0, 3, 5] = 1.0
    cam[1, 0, 7] = 1.0
    out = upsample(cam, (128, 96), (16.0, 4.0, 8.0, 2.0))
    assert out.shape == (2, 128, 96)
    flat = out[0].argmax()
    assert (int(flat // 96), int(flat % 96)) == (3 * 16 + 4, 5 * 8 + 2)
    assert float(out[0, 52, 42]) == pytest.approx(1.0, abs=1e-5)
    # bilinear tent: half way to the next cell centre is half the peak, on both sides
    assert float(out[0, 52 - 8, 42]) == pytest.approx(0.5, abs=1e-5) == float(out[0, 52 + 8, 42])
    assert float(out[0, 52, 42 - 4]) == pytest.approx(0.5, abs=1e-5) == float(out[0, 52, 42 + 4])
    # the border cells extend to the image edge (clamped), like plain resizing
    assert float(out[1, :4, 58:].min()) == pytest.approx(1.0, abs=1e-5)


def test_plain_bilinear_is_the_half_stride_geometry() -> None:
    cam = torch.rand(3, 7, 5, generator=torch.Generator().manual_seed(0))
    sy, sx = 56 / 7, 40 / 5
    plain = upsample(cam, (56, 40))
    placed = upsample(cam, (56, 40), (sy, (sy - 1) / 2, sx, (sx - 1) / 2))
    torch.testing.assert_close(placed, plain, rtol=1e-5, atol=1e-6)
    expected = F.interpolate(cam[:, None], size=(56, 40), mode="bilinear", align_corners=False)
    assert torch.equal(plain, expected[:, 0])


@pytest.mark.parametrize("cls", [GradCAM, GradCAMPlusPlus])
def test_bilinear_mode_is_the_classic_resize_of_the_same_layer_map(
    cls: type, tiny_cnn: TinyCNN, batch: Batch
) -> None:
    targets = torch.tensor([0, 1, 2, 1])
    placed = cls(relu=False).explain(tiny_cnn, batch, targets).pixels
    plain = cls(relu=False, upsample="bilinear").explain(tiny_cnn, batch, targets).pixels
    layer_map = placed[:, ::2, ::2]  # conv2 (k3 p1 stride 2): cell i sits on pixel 2 i
    expected = F.interpolate(
        layer_map[:, None], size=(16, 16), mode="bilinear", align_corners=False
    )[:, 0]
    torch.testing.assert_close(plain, expected, rtol=1e-5, atol=1e-7)
    assert not torch.allclose(placed, plain, atol=1e-4)


def _stem_like() -> nn.Sequential:
    """ResNet-like downsampling (k7 s2 p3, max-pool k3 s2 p1, two k3 s2 p1) with box weights."""
    net = nn.Sequential(
        nn.Conv2d(1, 2, 7, stride=2, padding=3),
        nn.ReLU(),
        nn.MaxPool2d(3, 2, 1),
        nn.Conv2d(2, 2, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(2, 3, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(3, 2),
    )
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                m.weight.fill_(0.1)
                nn.init.zeros_(m.get_parameter("bias"))
    return net.eval()


@pytest.mark.parametrize("cls", [GradCAM, GradCAMPlusPlus])
def test_aligned_map_peaks_on_the_lesion_and_plain_bilinear_is_shifted(cls: type) -> None:
    model = wrap(_stem_like())
    images = torch.zeros(2, 1, 128, 128)
    images[0, 0, 48, 80] = 1.0  # the centre of cell (3, 5) of the stride-16 layer
    images[1, 0, 96, 32] = 1.0  # cell (6, 2)
    batch = Batch(ids=("a", "b"), labels=torch.zeros(2, dtype=torch.long), images=images)
    targets = torch.zeros(2, dtype=torch.long)
    layer = {"layer": "6"}
    assert feature_geometry(model.module, model.module[6], 1) == pytest.approx((16, 0, 16, 0))

    def peaks(maps: Tensor) -> list[tuple[int, int]]:
        flat = maps.flatten(1).argmax(dim=1)
        return [(int(f // 128), int(f % 128)) for f in flat]

    aligned = cls(**layer).explain(model, batch, targets).pixels
    plain = cls(**layer, upsample="bilinear").explain(model, batch, targets).pixels
    assert peaks(aligned) == [(48, 80), (96, 32)]
    for (y, x), (py, px) in zip(peaks(aligned), peaks(plain), strict=True):
        assert py - y in (7, 8) and px - x in (7, 8)  # 7.5 px down and right (a tie)


@pytest.mark.parametrize("cls", [GradCAM, GradCAMPlusPlus])
def test_unmeasurable_model_gets_the_plain_map(
    cls: type, multimodal: ToyMultimodal, mm_batch: Batch
) -> None:
    targets = torch.tensor([0, 1, 2, 0])
    placed = cls().explain(multimodal, mm_batch, targets).pixels
    plain = cls(upsample="bilinear").explain(multimodal, mm_batch, targets).pixels
    assert torch.equal(placed, plain)


@pytest.mark.parametrize("cls", [GradCAM, GradCAMPlusPlus])
def test_unknown_upsample_mode_is_a_clear_error(cls: type, tiny_cnn: TinyCNN) -> None:
    with pytest.raises(
        PluginError, match=r"upsample - expected one of .*bilinear.*, got 'nearest'"
    ):
        cls(upsample="nearest").explain(tiny_cnn, make_batch(2, 16), torch.zeros(2).long())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_geometry_runs_on_the_model_device() -> None:
    net = _vgg_stack(2).eval().cuda()
    assert feature_geometry(net, net[4], 1) == pytest.approx((2, 0.5, 2, 0.5), abs=1e-3)
    assert all(p.device.type == "cuda" for p in net.parameters())
