"""Every built-in explainer: registered under its name, declared honestly, runs on the toys."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from harness_builtins.plugin import EXPLAINERS

from harness.contracts import Explainer, Modality, Need, Output
from harness.plugin_manager import get_registries

STOCHASTIC = {"captum.lime", "captum.kernel_shap", "captum.smoothgrad"}
GRADIENT_FREE = {"control.random", "control.sobel", "captum.lime", "captum.kernel_shap"}
GRADIENT_FREE |= {"captum.occlusion", "control.mask"}


def _cls(name: str) -> type[Explainer]:
    return get_registries().explainers.get(name)


@pytest.mark.parametrize("name", sorted(EXPLAINERS))
def test_registered_and_declared(name: str, tmp_path: Path) -> None:
    cls = _cls(name)
    assert cls.name == name and cls.version and cls.citation
    tags = cls.tags
    assert Output.PIXEL in tags.output and Modality.IMAGE in tags.modalities
    assert tags.deterministic is (name not in STOCHASTIC)
    assert (Need.GRADIENTS in tags.needs) is (name not in GRADIENT_FREE)
    assert (Need.TARGET_LAYER in tags.needs) is name.startswith(("captum.grad_cam", "cam."))
    instances = cls.conformance_instances(tmp_path)
    assert instances and all(type(e) is cls for e in instances)
    for explainer in instances:
        assert explainer.clone().get_params() == explainer.get_params()
        assert explainer.clone().params_hash() == explainer.params_hash()


@pytest.mark.parametrize("name", sorted(EXPLAINERS))
def test_conformance_instances_run_on_the_toy_models(
    name: str, tmp_path: Path, tiny_cnn, batch, multimodal, mm_batch
) -> None:
    cls = _cls(name)
    cases = [(tiny_cnn, batch)]
    if Modality.IMAGE_TEXT in cls.tags.modalities:
        cases.append((multimodal, mm_batch))
    targets = torch.tensor([0, 1, 2, 1])
    if Need.MASKS in cls.tags.needs:  # every class's mask: the bright square of each image
        cases = [(m, replace(b, masks=(b.images > 0.6).expand(-1, 3, -1, -1))) for m, b in cases]
    for explainer in cls.conformance_instances(tmp_path):
        if Output.PIXEL not in explainer.get_tags().output:
            continue  # token instances run in the conformance kit's text fixtures
        for model, rows in cases:
            torch.manual_seed(0)
            first = explainer.explain(model, rows, targets).pixels
            torch.manual_seed(0)
            second = explainer.explain(model, rows, targets).pixels
            assert first.shape == (4, 16, 16) and first.device == model.device
            assert torch.equal(first, second)
            assert float(first.abs().sum()) > 0
