"""Zennit LRP: conservation, canonizer correctness, per-target relevance, no lasting changes.

Tolerances (measured on random-init ResNet18, 1 channel, 2 classes, 32x32):

- Without biases (BatchNorm means and shifts and the fc bias zeroed), every
  rule of both composites is conservative: relevance sum / logit was 0.9999 for
  all rows; the test allows 1e-3. Without the ResNet canonizer the same ratio
  is 256 (= 2^8: each of the 8 residual additions doubles relevance).
- With non-trivial BatchNorm statistics, merged biases absorb relevance:
  EpsilonPlusFlat gave ratios 0.10-0.95 (medians 0.47-0.60) over four seeds for
  rows with |logit| > 1, always with the logit's sign, and a Pearson correlation
  of 0.94-0.998 between relevance sums and logits; the test asks for ratios in
  [0.05, 1.5], equal signs and correlation > 0.9. EpsilonGammaBox is not held to
  this (correlation 0.46-0.97 there): its gamma rule lets biases absorb more.
"""

from __future__ import annotations

import copy

import pytest
import torch
from _explainer_toys import ResNet18, Wrapped, info_for, make_batch, wrap
from harness_builtins.explainers.propagation import _common as lrp_common
from harness_builtins.explainers.propagation.lrp import LRPEpsilonGammaBox, LRPEpsilonPlusFlat
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from harness.contracts import Batch
from harness.errors import CapabilityError

COMPOSITES = [LRPEpsilonPlusFlat, LRPEpsilonGammaBox]


def _resnet(seed: int = 0, *, biases: bool = True) -> ResNet18:
    model = ResNet18(seed=seed)
    model.build(info_for(2))
    with torch.no_grad():
        model.module.fc.weight.mul_(30)
        if not biases:
            model.module.fc.bias.zero_()
            for m in model.module.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.running_mean.zero_()
                    m.bias.zero_()
    return model


def _sums_and_logits(model, explainer, batch: Batch, targets: torch.Tensor):
    logits = model.logits(batch).detach().gather(1, targets[:, None])[:, 0]
    relevance = explainer.explain(model, batch, targets).pixels
    return relevance.sum(dim=(1, 2)), logits


@pytest.fixture(scope="module")
def bias_free() -> ResNet18:
    return _resnet(1, biases=False)


@pytest.fixture(scope="module")
def small_batch() -> Batch:
    return make_batch(8, 24, seed=4)


def test_without_the_resnet_canonizer_relevance_is_not_conserved(
    bias_free, small_batch: Batch, monkeypatch
) -> None:
    from zennit.canonizers import SequentialMergeBatchNorm

    monkeypatch.setattr(lrp_common, "canonizers_for", lambda m, w: [SequentialMergeBatchNorm()])
    sums, logits = _sums_and_logits(
        bias_free, LRPEpsilonPlusFlat(), small_batch, torch.zeros(8).long()
    )
    assert float((sums / logits).min()) > 100


@pytest.mark.parametrize("cls", COMPOSITES)
def test_relevance_is_conserved_for_each_requested_target(
    cls, bias_free, small_batch: Batch
) -> None:
    rows = small_batch.index([0, 0, 1, 1, 2, 2, 3, 3])
    targets = torch.tensor([0, 1] * 4)
    sums, logits = _sums_and_logits(bias_free, cls(), rows, targets)
    assert bool((logits.abs() > 0.5).all())
    torch.testing.assert_close(sums / logits, torch.ones(8), rtol=0, atol=1e-3)
    assert not torch.allclose(logits[0::2], logits[1::2], rtol=0.05)


def test_epsilon_plus_flat_tracks_the_logit_with_batchnorm_biases() -> None:
    model = _resnet(0)
    batch = make_batch(16, 16, seed=0)
    targets = torch.tensor([0, 1] * 8)
    sums, logits = _sums_and_logits(model, LRPEpsilonPlusFlat(), batch, targets)
    big = logits.abs() > 1
    assert int(big.sum()) >= 8
    ratio = (sums / logits)[big]
    assert float(ratio.min()) > 0.05 and float(ratio.max()) < 1.5
    assert float(torch.corrcoef(torch.stack([sums, logits]))[0, 1]) > 0.9


def _fused_resnet(model: ResNet18) -> Wrapped:
    """The same network with each BatchNorm folded into its conv by torch (not by Zennit)."""
    net = copy.deepcopy(model.module)
    net.conv1, net.bn1 = fuse_conv_bn_eval(net.conv1, net.bn1), nn.Identity()
    for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
        for block in layer:
            block.conv1, block.bn1 = fuse_conv_bn_eval(block.conv1, block.bn1), nn.Identity()
            block.conv2, block.bn2 = fuse_conv_bn_eval(block.conv2, block.bn2), nn.Identity()
            if block.downsample is not None:
                conv, bn = block.downsample
                block.downsample = nn.Sequential(fuse_conv_bn_eval(conv, bn))
    return wrap(net.eval())


@pytest.mark.parametrize("cls", COMPOSITES)
def test_batchnorm_merge_equals_torch_fusion(cls, resnet18, small_batch: Batch) -> None:
    fused = _fused_resnet(resnet18)
    targets = torch.tensor([0, 1] * 4)
    torch.testing.assert_close(
        fused.logits(small_batch), resnet18.logits(small_batch), rtol=1e-4, atol=1e-5
    )
    ours = cls().explain(resnet18, small_batch, targets).pixels
    ref = cls().explain(fused, small_batch, targets).pixels
    scale = float(ref.abs().max())
    # measured: 1.1e-4 (EpsilonPlusFlat) and 3.6e-4 (EpsilonGammaBox) of the largest relevance;
    # with the BatchNorm left unmerged the difference is 0.89 and 3.3
    torch.testing.assert_close(ours / scale, ref / scale, rtol=0, atol=2e-3)


@pytest.mark.parametrize("cls", COMPOSITES)
def test_model_is_unchanged_after_explaining(cls, resnet18, small_batch: Batch) -> None:
    state = {k: v.clone() for k, v in resnet18.module.state_dict().items()}
    before = resnet18.logits(small_batch).detach()
    cls().explain(resnet18, small_batch, torch.tensor([0, 1] * 4))
    assert torch.equal(before, resnet18.logits(small_batch).detach())
    after = resnet18.module.state_dict()
    assert state.keys() == after.keys() and all(torch.equal(state[k], after[k]) for k in state)
    for m in resnet18.module.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks
        assert "forward" not in vars(m) and not hasattr(m, "canonizer_sum")
    assert all(p.grad is None for p in resnet18.module.parameters())


def _vgg_like() -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(32, 2),
    )
    with torch.no_grad():
        net[-1].weight.mul_(10)
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
    return net.eval()


@pytest.mark.parametrize("cls", COMPOSITES)
def test_sequential_network_is_conserved_and_merged(cls, small_batch: Batch) -> None:
    net = _vgg_like()
    targets = torch.tensor([0, 1] * 4)
    for conv in (net[0], net[4]):
        conv.bias = None
    net[-1].bias.data.zero_()
    sums, logits = _sums_and_logits(wrap(net), cls(), small_batch, targets)
    torch.testing.assert_close(sums / logits, torch.ones(8), rtol=0, atol=1e-3)

    with torch.no_grad():
        for bn in (net[1], net[5]):
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.bias.uniform_(-0.2, 0.2)
    fused = copy.deepcopy(net)
    fused[0], fused[1] = fuse_conv_bn_eval(net[0], net[1]), nn.Identity()
    fused[4], fused[5] = fuse_conv_bn_eval(net[4], net[5]), nn.Identity()
    ours = cls().explain(wrap(net), small_batch, targets).pixels
    ref = cls().explain(wrap(fused), small_batch, targets).pixels
    scale = float(ref.abs().max())
    torch.testing.assert_close(ours / scale, ref / scale, rtol=0, atol=2e-3)


def test_canonizer_follows_the_architecture() -> None:
    from torchvision.models import VGG
    from zennit.canonizers import SequentialMergeBatchNorm
    from zennit.torchvision import ResNetCanonizer, VGGCanonizer

    vgg = VGG.__new__(VGG)  # a real VGG instance without its 120M-parameter classifier
    nn.Module.__init__(vgg)
    vgg.features = _vgg_like()
    assert isinstance(lrp_common.canonizers_for(vgg, "x")[0], VGGCanonizer)
    assert isinstance(lrp_common.canonizers_for(_resnet().module, "x")[0], ResNetCanonizer)
    generic = lrp_common.canonizers_for(_vgg_like(), "x")[0]
    assert type(generic) is SequentialMergeBatchNorm


@pytest.mark.parametrize("cls", COMPOSITES)
def test_densenet_is_refused_not_silently_wrong(cls, small_batch: Batch) -> None:
    from torchvision.models import DenseNet

    net = DenseNet(
        growth_rate=4, block_config=(1, 1), num_init_features=8, bn_size=2, num_classes=2
    )
    net.features.conv0 = nn.Conv2d(1, 8, kernel_size=7, stride=2, padding=3, bias=False)
    with pytest.raises(CapabilityError, match="DenseNet"):
        cls().explain(wrap(net.eval()), small_batch, torch.zeros(8).long())
    assert "DenseNet" in cls.unsupported_architectures


def test_in_place_relus_give_the_same_relevance(small_batch: Batch) -> None:
    plain, in_place = _resnet(2), _resnet(2)
    for m in in_place.module.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = True
    targets = torch.tensor([0, 1] * 4)
    a = LRPEpsilonPlusFlat().explain(plain, small_batch, targets).pixels
    b = LRPEpsilonPlusFlat().explain(in_place, small_batch, targets).pixels
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
