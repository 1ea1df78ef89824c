from __future__ import annotations

import time

import pytest
import torch
import torchvision
from harness_builtins.datasets.synthetic_lesions import SyntheticLesions
from harness_builtins.models.torchvision_cnn import (
    VGG16,
    VGG16BN,
    DenseNet121,
    ResNet18,
    ResNet50,
)
from torch import nn

from harness.contracts import Batch, DatasetInfo, FitContext, Modality, Task
from harness.errors import CapabilityError, PluginError

LIGHT = [ResNet18, ResNet50, DenseNet121]


def _info(channels: int = 1, outputs: int = 2, size: int = 32, task: Task = Task.MULTICLASS):
    names = tuple(f"c{i}" for i in range(outputs))
    return DatasetInfo(Modality.IMAGE, task, names, channels=channels, image_size=(size, size))


@pytest.fixture(scope="module")
def built():
    """One instance of each light architecture, built for 2 channels and 3 outputs."""
    torch.manual_seed(0)
    out = {}
    for cls in LIGHT:
        model = cls()
        model.build(_info(2, 3))
        out[cls] = model
    return out


def test_init_only_stores_parameters():
    model = ResNet18(epochs=2, freeze=["layer1"])
    assert model.get_params() == {
        "epochs": 2,
        "lr": 1e-3,
        "batch_size": 32,
        "weights": None,
        "freeze": ["layer1"],
        "cam_layer": None,
    }
    assert not hasattr(model, "module")


@pytest.mark.parametrize(("channels", "outputs"), [(1, 2), (3, 5), (4, 1)])
def test_any_channels_and_outputs(channels, outputs):
    model = ResNet18()
    model.build(_info(channels, outputs))
    images = torch.randn(2, channels, 32, 32)
    batch = Batch(ids=("a", "b"), labels=torch.zeros(2, dtype=torch.long), images=images)
    assert model.module.conv1.in_channels == channels
    assert model.logits(batch).shape == (2, outputs)


@pytest.mark.parametrize("cls", LIGHT)
def test_each_architecture_adapts_channels_and_outputs(cls, built):
    images = torch.randn(2, 2, 32, 32)
    batch = Batch(ids=("a", "b"), labels=torch.zeros(2, dtype=torch.long), images=images)
    assert built[cls].logits(batch).shape == (2, 3)


def test_vgg16_builds_adapts_and_has_no_inplace_relu():
    assert VGG16().classifier_width == 4096  # torchvision's, needed by ImageNet weights
    model = VGG16(classifier_width=32)
    model.build(_info(1, 3))
    assert model.module.features[0].in_channels == 1
    assert [model.module.classifier[i].out_features for i in (0, 3, 6)] == [32, 32, 3]
    batch = Batch(
        ids=("a",), labels=torch.zeros(1, dtype=torch.long), images=torch.randn(1, 1, 32, 32)
    )
    assert model.logits(batch).shape == (1, 3)
    assert not any(getattr(m, "inplace", False) for m in model.module.modules())
    assert model.target_layer() is model.module.features[29]
    assert isinstance(model.target_layer(), nn.ReLU)


def test_vgg16_bn_has_batch_norm_and_cams_the_last_conv_relu():
    model = VGG16BN(classifier_width=32)
    model.build(_info(1, 3))
    features = model.module.features
    assert sum(isinstance(m, nn.BatchNorm2d) for m in features) == 13
    assert isinstance(features[40], nn.Conv2d) and isinstance(features[41], nn.BatchNorm2d)
    assert model.target_layer() is features[42] and isinstance(features[42], nn.ReLU)
    assert isinstance(features[43], nn.MaxPool2d)
    batch = Batch(
        ids=("a",), labels=torch.zeros(1, dtype=torch.long), images=torch.randn(1, 1, 32, 32)
    )
    assert model.logits(batch).shape == (1, 3)


@pytest.mark.parametrize("cls", LIGHT)
def test_no_inplace_relu_and_cam_layer_output_survives_forward(cls, built):
    model = built[cls]
    assert not any(isinstance(m, nn.ReLU) and m.inplace for m in model.module.modules())
    seen = {}

    def hook(module, args, output):
        seen["ref"], seen["copy"] = output, output.detach().clone()

    handle = model.target_layer().register_forward_hook(hook)
    model.module(torch.randn(2, 2, 32, 32))
    handle.remove()
    assert torch.equal(seen["ref"], seen["copy"])  # nothing downstream modified it in place


def test_target_layer_defaults_override_and_tags(built):
    defaults = {ResNet18: "layer3", ResNet50: "layer4", DenseNet121: "features.norm5"}
    for cls, layer in defaults.items():
        model = built[cls]
        assert model.get_tags().target_layer == layer
        assert model.target_layer() is model.module.get_submodule(layer)
        assert model.get_tags().differentiable and model.get_tags().randomisable
    model = ResNet18(cam_layer="layer4")
    model.build(_info())
    assert model.get_tags().target_layer == "layer4"
    assert model.target_layer() is model.module.layer4
    bad = ResNet18(cam_layer="layer9")
    bad.build(_info())
    with pytest.raises(PluginError, match="Did you mean") as err:  # a spec mistake: the cell fails
        bad.target_layer()
    assert not isinstance(err.value, CapabilityError)


def test_randomisable_layers_output_first():
    model = ResNet18()
    model.build(_info())
    layers = model.randomisable_layers()
    assert layers[0][0] == "fc" and len(layers) == 41


def test_multilabel_head_is_sigmoid_and_trains_with_missing_labels():
    ds = SyntheticLesions(n=20, image_size=32)
    model = ResNet18(epochs=1, batch_size=8)
    model.build(_info(outputs=3, task=Task.MULTILABEL))
    batch = ds.load(list(ds.splits()["train"])[:8])
    labels = torch.tensor([[1, 0, -1], [-2, 1, 0]] * 4)
    probs = model.predict_proba(batch)
    assert probs.shape == (8, 3) and not torch.allclose(probs.sum(1), torch.ones(8))
    loss = model.loss(model.logits(batch), labels)
    assert torch.isfinite(loss)


def test_weights_from_local_file_adapt_first_conv_and_head(tmp_path):
    torch.manual_seed(1)
    reference = torchvision.models.resnet18(weights=None)  # 3 channels, 1000 classes
    path = tmp_path / "resnet18.pt"
    torch.save(reference.state_dict(), path)
    model = ResNet18(weights=str(path))
    model.build(_info(1, 2))
    module = model.module
    assert torch.allclose(module.conv1.weight, reference.conv1.weight.sum(1, keepdim=True))
    assert torch.equal(module.layer3[1].conv2.weight, reference.layer3[1].conv2.weight)
    assert torch.equal(module.bn1.running_var, reference.bn1.running_var)
    assert module.fc.weight.shape == (2, 512)
    # one channel of a constant image responds like the RGB filter on a grey image
    grey = torch.full((1, 3, 32, 32), 0.7)
    assert torch.allclose(module.conv1(grey[:, :1]), reference.conv1(grey), atol=1e-5)


def test_weights_with_matching_head_are_kept(tmp_path):
    first = ResNet18()
    first.build(_info(1, 2))
    path = tmp_path / "trained.pt"
    torch.save(first.state_dict(), path)
    second = ResNet18(weights=str(path))
    second.build(_info(1, 2))
    for key, value in first.state_dict().items():
        assert torch.equal(second.state_dict()[key], value), key


def test_densenet_legacy_checkpoint_keys_are_renamed(tmp_path):
    reference = torchvision.models.densenet121(weights=None)
    state = {}
    for key, value in reference.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue  # the published checkpoints predate this buffer
        for part in ("norm", "relu", "conv"):
            for idx in ("1", "2"):
                key = key.replace(f".{part}{idx}.", f".{part}.{idx}.")
        state[key] = value
    assert any(".norm.1." in k for k in state)
    path = tmp_path / "densenet121-legacy.pth"
    torch.save(state, path)
    model = DenseNet121(weights=str(path))
    model.build(_info(3, 4))
    assert torch.equal(model.module.features.conv0.weight, reference.features.conv0.weight)
    assert torch.equal(
        model.module.features.denseblock2.denselayer3.norm1.weight,
        reference.features.denseblock2.denselayer3.norm1.weight,
    )


def test_missing_local_weights_message_names_path(tmp_path):
    missing = tmp_path / "nowhere.pt"
    with pytest.raises(PluginError, match="weights file not found at .*nowhere.pt.*torch.save"):
        ResNet18(weights=str(missing)).build(_info())


def test_missing_imagenet_weights_message_names_cache_path(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    expected = tmp_path / "hub" / "checkpoints" / "resnet50-0676ba61.pth"
    assert torch.hub.get_dir() == str(tmp_path / "hub")
    with pytest.raises(PluginError) as err:
        ResNet50(weights="imagenet").build(_info())
    message = str(err.value)
    assert str(expected) in message and "weights='IMAGENET1K_V1'" in message
    assert "nothing is downloaded" in message


def test_imagenet_weights_from_torchvision_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.manual_seed(2)
    reference = torchvision.models.resnet18(weights=None)
    torch.save(reference.state_dict(), cache / "resnet18-f37072fd.pth")
    model = ResNet18(weights="imagenet")
    model.build(_info(1, 2))
    assert torch.equal(model.module.layer4[0].conv1.weight, reference.layer4[0].conv1.weight)


def test_unreadable_and_mismatched_weights_name_the_file(tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(PluginError, match="cannot read weights file .*corrupt.pt"):
        ResNet18(weights=str(corrupt)).build(_info())
    other = tmp_path / "resnet50.pt"
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), other)
    with pytest.raises(
        PluginError, match="resnet50.pt does not fit the architecture - shape mismatch"
    ):
        ResNet18(weights=str(other)).build(_info())


def test_freeze_keeps_layers_and_batchnorm_statistics_fixed():
    ds = SyntheticLesions(n=24, image_size=32)
    frozen = ["conv1", "bn1", "layer1", "layer2"]
    model = ResNet18(epochs=1, batch_size=8, freeze=frozen)
    model.build(ds.info())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    is_frozen = {n: any(n == p or n.startswith(p + ".") for p in frozen) for n in before}
    for name, param in model.module.named_parameters():
        assert param.requires_grad != is_frozen[name], name
    model.fit(ds, list(ds.splits()["train"]), FitContext(device=torch.device("cpu")))
    after = model.state_dict()
    for name, value in before.items():
        if is_frozen[name] and not name.endswith("num_batches_tracked"):
            assert torch.equal(after[name], value), name
    assert not torch.equal(after["layer3.0.conv1.weight"], before["layer3.0.conv1.weight"])
    assert not torch.equal(after["layer4.1.bn2.running_mean"], before["layer4.1.bn2.running_mean"])


def test_freeze_unknown_prefix_suggests_layers():
    with pytest.raises(
        PluginError, match="freeze entry 'layr2' matches no parameter.*Did you mean: layer2"
    ):
        ResNet18(freeze=["layr2"]).build(_info())


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # robust to a shared, oversubscribed CPU
    yield
    torch.set_num_threads(threads)


def test_resnet18_learns_synthetic_lesions_quickly(one_thread):
    torch.manual_seed(0)
    ds = SyntheticLesions(n=160, seed=0)
    splits = ds.splits()
    model = ResNet18(epochs=5)
    model.build(ds.info())
    start = time.process_time()
    model.fit(ds, list(splits["train"]), FitContext(device=torch.device("cpu"), seed=0))
    seconds = time.process_time() - start
    test = ds.load(list(splits["test"]) + list(splits["val"]))
    accuracy = float((model.predict_proba(test).argmax(1) == test.labels).float().mean())
    assert accuracy >= 0.85, (accuracy, seconds)


def test_conformance_instances_are_tiny(tmp_path):
    for cls in (*LIGHT, VGG16, VGG16BN):
        instances = cls.conformance_instances(tmp_path)
        assert instances and all(type(i) is cls and i.epochs == 1 for i in instances)
