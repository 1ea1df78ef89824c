"""Execution parameters (batch and chunk sizes) change no value, and no key or seed.

Every registered plugin that declares ``execution_params`` is run with each of
them at its default and at another value, from the same global seed: the
outputs must agree. Its ``params_hash`` (cache keys, and the seeds derived from
them) must ignore them, and so must the explain set's key for ``explain.batch_size``
and an unused ``explain.k``.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from harness.contracts import ExplanationMetric, Modality, Task
from harness.pipeline.explaining import _chosen_by
from harness.plugin_manager import get_registries
from harness.spec.schema import ExplainSpec
from harness.testing._select import fixture_batch, fixture_dataset, fixture_model, fixture_targets

OTHER = {
    "chunk": 3,
    "internal_batch_size": 5,
    "perturbations_per_eval": 3,
    "nt_samples_batch_size": 2,
}
SMALL = {  # keep the runs short; never an execution parameter
    "captum.smoothgrad": {"nt_samples": 5},
    "captum.integrated_gradients": {"n_steps": 8},
    "captum.lime": {"n_samples": 12, "segmentation": "grid", "grid_size": 4},
    "captum.kernel_shap": {"n_samples": 12, "segmentation": "grid", "grid_size": 4},
    "robustness.max_sensitivity": {"n_samples": 4},
    "robustness.avg_sensitivity": {"n_samples": 4},
}


def _declaring() -> list[tuple[str, str, str]]:
    regs = get_registries()
    return [
        (kind, name, param)
        for kind in ("explainers", "metrics")
        for name in regs.kind(kind).names()
        for param in sorted(regs.kind(kind).get(name).execution_params)
    ]


def test_the_builtin_batch_and_chunk_sizes_are_declared() -> None:
    declared = {(name, param) for _, name, param in _declaring()}
    assert {
        ("captum.smoothgrad", "nt_samples_batch_size"),
        ("captum.integrated_gradients", "internal_batch_size"),
        ("captum.lime", "perturbations_per_eval"),
        ("captum.kernel_shap", "perturbations_per_eval"),
        ("captum.occlusion", "perturbations_per_eval"),
        ("robustness.max_sensitivity", "chunk"),
        ("robustness.avg_sensitivity", "chunk"),
    } <= declared


@pytest.mark.parametrize(("kind", "name", "param"), _declaring())
def test_an_execution_parameter_changes_no_value_and_no_key(
    kind: str, name: str, param: str
) -> None:
    regs = get_registries()
    cls = regs.kind(kind).get(name)
    model = fixture_model(Modality.IMAGE, Task.MULTICLASS)
    batch = fixture_batch(fixture_dataset(Modality.IMAGE, Task.MULTICLASS), rows=4)
    targets = fixture_targets(batch, Task.MULTICLASS)
    base = SMALL.get(name, {})
    default, other = cls(**base), cls(**base, **{param: OTHER[param]})
    assert default.params_hash() == other.params_hash()
    assert cls(**base, **{param: OTHER[param] + 1}).params_hash() == default.params_hash()

    def run(plugin: object) -> torch.Tensor:
        torch.manual_seed(11)
        if isinstance(plugin, ExplanationMetric):
            explainer = regs.explainers.get("captum.input_x_gradient")()
            attribution = explainer.explain(model, batch, targets)
            return plugin.evaluate(model, batch, targets, attribution, explainer=explainer).values
        pixels = plugin.explain(model, batch, targets).pixels  # type: ignore[attr-defined]
        assert pixels is not None
        return pixels

    torch.testing.assert_close(run(other), run(default), rtol=1e-5, atol=1e-6)


def test_the_explain_set_key_ignores_batch_size_and_an_unused_k() -> None:
    spec = ExplainSpec(n=8, targets="label")
    same = [dataclasses.replace(spec, batch_size=3), dataclasses.replace(spec, k=7)]
    assert all(_chosen_by(s) == _chosen_by(spec) for s in same)
    top = ExplainSpec(n=8, targets="top_k")
    assert _chosen_by(dataclasses.replace(top, k=2)) != _chosen_by(top)
    assert _chosen_by(dataclasses.replace(spec, n=9)) != _chosen_by(spec)
