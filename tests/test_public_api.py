from __future__ import annotations

import subprocess
import sys

import harness

EXPECTED = [
    "Attribution",
    "Batch",
    "CapabilityError",
    "ClassificationMetric",
    "ContractViolation",
    "DataError",
    "Dataset",
    "DatasetInfo",
    "DatasetTags",
    "Explainer",
    "ExplainerTags",
    "ExplanationMetric",
    "FitContext",
    "GenerationMetric",
    "HarnessError",
    "Metric",
    "MetricKind",
    "MetricTags",
    "Modality",
    "Model",
    "ModelTags",
    "Need",
    "Output",
    "PluginConflictError",
    "PluginError",
    "Provides",
    "Sample",
    "Scores",
    "SpecError",
    "StoreError",
    "Task",
    "TorchModel",
    "__version__",
    "clear_metric_cache",
    "get_dataset",
    "get_explainer",
    "get_metric",
    "get_model",
    "hookimpl",
    "list_plugins",
    "score",
]


def test_all_is_pinned_sorted_and_resolvable() -> None:
    assert harness.__all__ == EXPECTED == sorted(EXPECTED)
    for name in harness.__all__:
        assert getattr(harness, name) is not None


def test_importing_harness_and_its_help_do_not_import_torch() -> None:
    code = "import sys, harness, harness.cli; harness.cli.build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_score_attributions_in_a_notebook_without_a_spec() -> None:
    """As people use Quantus: a metric by name, scored on hand-made inputs."""
    import torch
    from torch import nn

    class Linear(harness.TorchModel):
        name = "notebook.linear"

        def _build_module(self, info: harness.DatasetInfo) -> nn.Module:
            return nn.Sequential(nn.Flatten(), nn.Linear(16, 2))

    model = Linear()
    model.build(harness.DatasetInfo(harness.Modality.IMAGE, harness.Task.MULTICLASS, ("a", "b")))
    masks = torch.zeros(2, 2, 4, 4, dtype=torch.bool)
    masks[:, 1, :2, :2] = True  # the lesion of class 1 is the top-left quarter
    batch = harness.Batch(
        ids=("x", "y"), labels=torch.tensor([1, 1]), images=torch.rand(2, 1, 4, 4), masks=masks
    )
    pixels = torch.zeros(2, 4, 4)
    pixels[0, :2, :2] = 1.0  # all relevance inside the mask
    pixels[1, :2, :2], pixels[1, 2:, 2:] = 1.0, 3.0  # a quarter of it inside
    attribution = harness.Attribution(pixels=pixels)
    metric = harness.get_metric("localisation.relevance_mass")
    assert metric.higher_is_better and "localisation.pointing_game" in harness.list_plugins(
        "metrics"
    )
    scores = metric.score(model, batch, torch.tensor([1, 1]), attribution)
    assert scores.tolist() == [1.0, 0.25]
    explainer = harness.get_explainer("control.random", seed=1)
    assert explainer.get_params()["seed"] == 1
    assert explainer.explain(model, batch, torch.tensor([0, 1])).pixels.shape == (2, 4, 4)
    # an unknown parameter names itself and the accepted ones (not a bare TypeError)
    import pytest

    with pytest.raises(harness.PluginError, match=r"metric 'localisation.relevance_mass': unknown"):
        harness.get_metric("localisation.relevance_mass", postive_only=True)
    # the same scores from plain arrays, Quantus-style: no TorchModel, Batch or Attribution
    values = harness.score(
        "localisation.relevance_mass",
        model.module,
        batch.images.numpy(),
        [1, 1],
        pixels.numpy(),
        s_batch=masks[:, 1].numpy(),
    ).values
    assert values.tolist() == [1.0, 0.25]
