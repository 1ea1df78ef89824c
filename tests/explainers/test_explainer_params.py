"""Explainer and model parameters are checked without data (``check_params``), before any work."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import harness
from harness.errors import PluginError, SpecError
from harness.plugin_manager import get_registries
from harness.spec import load_spec


@pytest.mark.parametrize("name", get_registries().explainers.names())
def test_every_builtin_explainer_accepts_its_defaults(name: str) -> None:
    harness.get_explainer(name).check_params()


BAD = [
    ("captum.lime", {"n_samples": 0}, "n_samples - expected a positive number"),
    ("captum.lime", {"kernel_width": -1.0}, "kernel_width - expected a positive number"),
    ("captum.lime", {"alpha": -0.5}, "alpha - expected a number >= 0.0"),
    ("captum.kernel_shap", {"perturbations_per_eval": 0}, "perturbations_per_eval - expected"),
    ("captum.kernel_shap", {"segmentation": "grid", "grid_size": 1}, "grid_size - expected"),
    ("captum.kernel_shap", {"n_segments": 1}, "n_segments - expected a number >= 2"),
    ("captum.occlusion", {"stride": 0}, "stride - expected a positive number, got 0"),
    ("captum.occlusion", {"baseline": "black"}, "baseline - expected one of"),
    ("captum.integrated_gradients", {"n_steps": 0}, "n_steps - expected a positive number"),
    ("captum.smoothgrad", {"stdevs": -1.0}, "stdevs - expected a number >= 0.0"),
    ("captum.smoothgrad", {"nt_samples": 0}, "nt_samples - expected a positive number"),
    ("zennit.lrp_epsilon_plus_flat", {"epsilon": 0.0}, "epsilon - expected a positive number"),
    ("zennit.lrp_epsilon_gamma_box", {"gamma": -1.0}, "gamma - expected a positive number"),
    ("zennit.lrp_epsilon_gamma_box", {"low": 1.0, "high": 0.0}, "expected low < high"),
    ("captum.grad_cam", {"upsample": "nearest"}, "upsample - expected one of"),
    ("cam.grad_cam_plus_plus", {"upsample": "cubic"}, "upsample - expected one of"),
]


@pytest.mark.parametrize(("name", "params", "message"), BAD)
def test_bad_explainer_parameters_are_refused_without_data(name, params, message) -> None:
    with pytest.raises(PluginError, match=message):
        harness.get_explainer(name, **params).check_params()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"epochs": -1}, "epochs - expected an integer >= 0, got -1"),
        ({"lr": 0}, "lr - expected a positive number, got 0"),
        ({"batch_size": 0}, "batch_size - expected an integer >= 1, got 0"),
    ],
)
def test_bad_training_settings_are_refused_without_data(params, message) -> None:
    with pytest.raises(PluginError, match=message):
        harness.get_model("torchvision.resnet18", **params).check_params()
    harness.get_model("torchvision.resnet18").check_params()


def test_validate_lists_refused_values_with_key_and_line(tmp_path: Path) -> None:
    """A value refused by check_params is a spec problem: reported before any model trains."""
    spec = tmp_path / "bad.yaml"
    spec.write_text(
        textwrap.dedent("""\
        benchmark: bad
        dataset: {name: synthetic.lesions, params: {n: 48, image_size: 32}}
        models:
          - {name: torchvision.resnet18, params: {epochs: -2}}
        explainers:
          - {name: captum.lime, params: {n_samples: 0}}
          - captum.grad_cam
        metrics: [localisation.pointing_game]
        """)
    )
    with pytest.raises(SpecError) as err:
        load_spec(spec)
    text = str(err.value)
    assert "models[0].params" in text and "epochs - expected an integer >= 0" in text
    assert "explainers[0].params" in text and "n_samples - expected a positive number" in text
