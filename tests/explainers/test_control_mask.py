"""The ground-truth-mask control returns each row's target mask, and refuses batches without."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from _explainer_toys import TinyCNN, info_for, make_batch
from harness_builtins.datasets.synthetic_findings import SyntheticFindings
from harness_builtins.datasets.synthetic_lesions import SyntheticLesions
from harness_builtins.explainers.control.mask_oracle import GroundTruthMask

import harness
from harness.contracts import Batch, Need, Task
from harness.errors import CapabilityError, DataError, PluginError

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _with_masks(batch: Batch, k: int = 3) -> Batch:
    """Give class c of row i the pixels of its bright square shifted by c rows."""
    square = batch.images[:, 0] > 0.6
    masks = torch.stack([square.roll(c, dims=1) for c in range(k)], dim=1)
    return replace(batch, masks=masks)


@pytest.mark.parametrize("device", DEVICES)
def test_returns_the_target_mask_as_floats_on_the_model_device(device: str) -> None:
    model = TinyCNN()
    model.build(info_for(3))
    model.to(device)
    batch = _with_masks(make_batch(4, 16))
    targets = torch.tensor([2, 0, 1, 2])
    pixels = GroundTruthMask().explain(model, batch, targets).pixels
    assert pixels is not None
    assert pixels.shape == (4, 16, 16) and pixels.dtype == torch.float32
    assert pixels.device.type == torch.device(device).type
    expected = torch.stack([batch.masks[i, int(t)] for i, t in enumerate(targets)]).float()
    assert torch.equal(pixels.cpu(), expected)
    assert model.calls == 0  # the model is never run


def test_multilabel_rows_get_the_mask_of_their_own_finding() -> None:
    dataset = SyntheticFindings(n=16, image_size=24, prevalence=0.6)
    info = dataset.info()
    batch = dataset.load(list(dataset.splits()["train"])[:6])
    pairs = (batch.labels == 1).nonzero()  # every (row, present finding), as the runner does
    rows, targets = pairs[:, 0], pairs[:, 1]
    assert info.task is Task.MULTILABEL and len(set(targets.tolist())) > 1
    model = TinyCNN()
    model.build(info_for(info.num_outputs, task=Task.MULTILABEL))
    pixels = GroundTruthMask().explain(model, batch.index(rows), targets).pixels
    assert pixels is not None
    assert torch.equal(pixels.bool(), batch.masks[rows, targets])
    assert bool(pixels.flatten(1).any(1).all())  # present findings have non-empty masks


def test_lesions_mask_follows_the_target_class() -> None:
    dataset = SyntheticLesions(n=12, image_size=24)
    batch = dataset.load(list(dataset.splits()["train"]))
    model = TinyCNN()
    model.build(info_for(2))
    lesion = GroundTruthMask().explain(model, batch, torch.ones(len(batch), dtype=torch.long))
    normal = GroundTruthMask().explain(model, batch, torch.zeros(len(batch), dtype=torch.long))
    assert torch.equal(lesion.pixels, batch.masks[:, 1].float())
    assert float(normal.pixels.abs().sum()) == 0.0  # "normal" has nothing to localise
    assert bool((lesion.pixels.flatten(1).sum(1) > 0).eq(batch.labels == 1).all())


def test_batch_without_masks_raises_capability_error(tiny_cnn: TinyCNN, batch: Batch) -> None:
    with pytest.raises(CapabilityError, match="control.mask.*expected ground-truth masks"):
        GroundTruthMask().explain(tiny_cnn, batch, torch.zeros(4, dtype=torch.long))


def test_bad_masks_or_targets_raise_clear_errors(tiny_cnn: TinyCNN, batch: Batch) -> None:
    wrong = replace(batch, masks=torch.ones(4, 3, 8, 8, dtype=torch.bool))
    with pytest.raises(DataError, match=r"expected a \(N, K, H, W\) tensor"):
        GroundTruthMask().explain(tiny_cnn, wrong, torch.zeros(4, dtype=torch.long))
    with pytest.raises(PluginError, match=r"targets - expected indices in \[0, 3\)"):
        GroundTruthMask().explain(tiny_cnn, _with_masks(batch), torch.tensor([0, 1, 3, 0]))


def test_registered_as_control_mask() -> None:
    explainer = harness.get_explainer("control.mask")
    assert isinstance(explainer, GroundTruthMask) and explainer.get_params() == {"over": "pixels"}


def test_over_tokens_gives_the_target_rationale() -> None:
    from harness.contracts import Modality, Task
    from harness.testing._select import (
        fixture_batch,
        fixture_dataset,
        fixture_model,
        fixture_targets,
    )

    model = fixture_model(Modality.TEXT, Task.MULTICLASS)
    batch = fixture_batch(fixture_dataset(Modality.TEXT, Task.MULTICLASS), rows=4)
    targets = fixture_targets(batch, Task.MULTICLASS)
    explainer = harness.get_explainer("control.mask", over="tokens")
    assert explainer.get_tags().needs == {Need.RATIONALES}
    tokens = explainer.explain(model, batch, targets).tokens
    assert torch.equal(tokens, batch.target_rationales(targets).float())
    auprc = harness.get_metric("localisation.rationale_auprc").score(
        model, batch, targets, harness.Attribution(tokens=tokens)
    )
    assert auprc.tolist() == [1.0] * 4  # the ceiling of the token localisation metric
    with pytest.raises(CapabilityError, match="batch rationales"):
        explainer.explain(model, replace(batch, rationales=None), targets)
    with pytest.raises(PluginError, match="over='words'"):
        harness.get_explainer("control.mask", over="words").get_tags()
