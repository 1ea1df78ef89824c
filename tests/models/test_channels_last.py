"""Channels-last weights after training (the built-in CNNs' default) change nothing but rounding.

Training runs in torch's default layout whatever the setting, so the trained
weights are the same bit for bit; every built-in image explainer then gives the
same attributions on the channels-last model as on the same weights in the
default layout, for 1- and 3-channel inputs (a 3-channel input gradient comes
back channels-last).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from harness_builtins.datasets.synthetic_lesions import SyntheticLesions
from harness_builtins.models.torchvision_cnn import VGG16BN, DenseNet121, ResNet18
from harness_builtins.plugin import EXPLAINERS

from harness.contracts import Batch, DatasetInfo, FitContext, Modality, Need, Output, Task
from harness.plugin_manager import get_registries


def _pair(cls: type, channels: int) -> tuple:
    info = DatasetInfo(
        Modality.IMAGE, Task.MULTICLASS, ("a", "b", "c"), channels=channels, image_size=(32, 32)
    )
    models = []
    for channels_last in (True, False):
        torch.manual_seed(0)
        model = cls()
        model.channels_last = channels_last
        model.build(info)
        model.load_state_dict(model.state_dict())  # a trained state, as from the checkpoint cache
        models.append(model)
    return models[0], models[1]


def _conv_weights(model) -> list[torch.Tensor]:
    return [m.weight for m in model.module.modules() if isinstance(m, torch.nn.Conv2d)]


def test_training_runs_in_the_default_layout_then_weights_turn_channels_last() -> None:
    data = SyntheticLesions(n=24, image_size=32)
    ids = list(data.splits()["train"])
    states = {}
    for channels_last in (True, False):
        torch.manual_seed(0)
        model = ResNet18(epochs=1, batch_size=8)
        model.channels_last = channels_last
        model.build(data.info())
        model.load_state_dict(model.state_dict())  # channels-last before training: undone by fit
        model.fit(data, ids, FitContext(device=torch.device("cpu"), seed=0))
        weights = _conv_weights(model)
        assert all(w.is_contiguous(memory_format=torch.channels_last) for w in weights) is (
            channels_last
        )
        states[channels_last] = model.state_dict()
    for name, value in states[False].items():
        assert torch.equal(states[True][name], value), name  # bit for bit


def _batch(channels: int) -> Batch:
    g = torch.Generator().manual_seed(1)
    images = torch.rand(3, channels, 32, 32, generator=g)
    images[:, :, 8:20, 10:22] += 0.7
    masks = (images.mean(dim=1, keepdim=True) > 0.6).expand(-1, 3, -1, -1)
    return Batch(ids=("a", "b", "c"), labels=torch.tensor([0, 1, 2]), images=images, masks=masks)


@pytest.mark.parametrize("cls", [ResNet18, VGG16BN, DenseNet121])
def test_weights_are_channels_last_and_logits_equal(cls: type) -> None:
    fast, plain = _pair(cls, 3)
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in _conv_weights(fast))
    assert all(w.is_contiguous() for w in _conv_weights(plain))
    batch = _batch(3)
    with torch.no_grad():
        torch.testing.assert_close(fast.logits(batch), plain.logits(batch), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", sorted(EXPLAINERS))
def test_explainers_agree_on_both_layouts(name: str, channels: int, tmp_path: Path) -> None:
    cls = get_registries().explainers.get(name)
    fast, plain = _pair(ResNet18, channels)
    batch = _batch(channels)
    targets = torch.tensor([0, 1, 2])
    for explainer in cls.conformance_instances(tmp_path):
        tags = explainer.get_tags()
        if Output.PIXEL not in tags.output or Modality.IMAGE not in tags.modalities:
            continue
        maps = []
        for model in (fast, plain):
            torch.manual_seed(0)
            maps.append(explainer.explain(model, batch, targets).pixels)
        scale = float(maps[1].abs().max()) or 1.0
        torch.testing.assert_close(maps[0], maps[1], rtol=1e-3, atol=1e-4 * scale)
        if Need.GRADIENTS in tags.needs:
            assert scale > 0
