"""``check_params`` of every metric: defaults pass, each refused value is named, before any work."""

from __future__ import annotations

import re
from typing import Any

import pytest
import torch
from _toys_a import InputXGradient, blob_batch, random_maps
from conftest import wrap_module
from torch import Tensor, nn

import harness
from harness.contracts import Attribution
from harness.errors import PluginError
from harness.plugin_manager import get_registries

ALL_METRICS = get_registries().metrics.names()
PIXEL_STEPS = ("faithfulness.deletion_auc", "faithfulness.insertion_auc")
STEP_METRICS = (*PIXEL_STEPS, "faithfulness.pixel_flipping", "faithfulness.monotonicity")
SANITY = (
    "sanity.cascading_randomisation",
    "sanity.independent_randomisation",
    "sanity.random_logit",
    "sanity.data_randomisation",
)
ERASER = ("faithfulness.comprehensiveness", "faithfulness.sufficiency")
SENSITIVITY = ("robustness.max_sensitivity", "robustness.avg_sensitivity")
COMPLEXITY = ("complexity.sparseness", "complexity.entropy")
THRESHOLDED = (
    "classification.accuracy",
    "classification.precision_weighted",
    "classification.recall_weighted",
    "classification.f1_weighted",
    "classification.f1_macro",
    "classification.masked_accuracy",
)


def _cases() -> list[tuple[str, dict[str, Any], str]]:
    """Return (metric, refused parameters, message fragment) for every check."""
    cases: list[tuple[str, dict[str, Any], str]] = []
    for name in STEP_METRICS:
        cases += [
            (name, {"steps": 0}, "steps=0 - expected a positive integer, got 0."),
            (name, {"steps": 2.5}, "steps=2.5 - expected a positive integer"),
            (name, {"pixels_per_step": 0}, "pixels_per_step=0 - expected a positive integer"),
            (name, {"baseline": "grey"}, "baseline='grey' - expected one of 'zero', 'black'"),
            (name, {"baseline": True}, "baseline=True - expected one of"),
            (name, {"baseline": float("nan")}, "baseline=nan - expected a finite number"),
            (name, {"output": "softmax"}, "output='softmax' - expected one of 'probability'"),
        ]
    cases += [
        ("faithfulness.pixel_flipping", {"order": "random"}, "order='random' - expected one of"),
        ("faithfulness.monotonicity", {"abs": "no"}, "abs='no' - expected True or False"),
        ("faithfulness.monotonicity", {"full_curve": 1}, "full_curve=1 - expected True or False"),
        (
            "faithfulness.region_perturbation",
            {"patch_size": 0},
            "patch_size=0 - expected a positive integer",
        ),
        (
            "faithfulness.region_perturbation",
            {"regions": 0},
            "regions=0 - expected a positive integer",
        ),
        (
            "faithfulness.region_perturbation",
            {"order": "up"},
            "order='up' - expected one of 'morf', 'lerf'",
        ),
        ("faithfulness.region_perturbation", {"output": "x"}, "output='x' - expected one of"),
        ("faithfulness.region_perturbation", {"baseline": "x"}, "baseline='x' - expected one of"),
        ("faithfulness.correlation", {"runs": 1}, "runs=1 - expected an integer >= 2, got 1."),
        ("faithfulness.correlation", {"runs": 8.0}, "runs=8.0 - expected an integer"),
        (
            "faithfulness.correlation",
            {"subset_size": 0},
            "subset_size=0 - expected a positive integer",
        ),
        ("faithfulness.correlation", {"baseline": "x"}, "baseline='x' - expected one of"),
        ("faithfulness.correlation", {"output": "x"}, "output='x' - expected one of 'logit'"),
        ("faithfulness.correlation", {"seed": 1.5}, "seed=1.5 - expected an integer"),
        (
            "faithfulness.road",
            {"percentages": []},
            "percentages=[] - expected a non-empty list of numbers in [0, 100)",
        ),
        ("faithfulness.road", {"percentages": [10, 100]}, "in [0, 100)"),
        ("faithfulness.road", {"percentages": [-1]}, "in [0, 100)"),
        ("faithfulness.road", {"percentages": ["5"]}, "percentages=['5'] - expected"),
        ("faithfulness.road", {"order": "x"}, "order='x' - expected one of 'morf', 'lerf'"),
        ("faithfulness.road", {"output": "logit"}, "output='logit' - expected one of 'correct'"),
        ("faithfulness.road", {"noise": -0.1}, "noise=-0.1 - expected a number in [0, inf)"),
        ("faithfulness.road", {"seed": "1"}, "seed='1' - expected an integer"),
    ]
    for name in ERASER:
        cases += [
            (name, {"bins": ()}, "bins=() - expected a non-empty list of percentages in (0, 100]"),
            (name, {"bins": (0, 10)}, "in (0, 100]"),
            (name, {"bins": (10, 101)}, "in (0, 100]"),
            (name, {"bins": "15"}, "bins='15' - expected a non-empty list"),
            (name, {"removal": "mask"}, "removal='mask' - expected one of 'delete', 'replace'"),
            (name, {"output": "x"}, "output='x' - expected one of 'probability', 'logit'"),
            (name, {"pad_token": 0.0}, "pad_token=0.0 - expected an integer"),
        ]
    cases += [
        (
            "localisation.pointing_game",
            {"tolerance": -1},
            "tolerance=-1 - expected an integer >= 0",
        ),
        (
            "localisation.pointing_game",
            {"tolerance": 1.5},
            "tolerance=1.5 - expected an integer >= 0",
        ),
        ("localisation.top_k_intersection", {"k": 0}, "k=0 - expected a positive integer"),
        ("localisation.top_k_intersection", {"k": 2.5}, "k=2.5 - expected a positive integer"),
        (
            "localisation.relevance_mass",
            {"positive_only": "yes"},
            "positive_only='yes' - expected True or False",
        ),
        (
            "localisation.relevance_rank",
            {"positive_only": None},
            "positive_only=None - expected True or False",
        ),
        ("localisation.rationale_auprc", {"pad_token": "0"}, "pad_token='0' - expected an integer"),
        (
            "localisation.iou",
            {"threshold": 0},
            "threshold=0 - expected 'otsu' or a number in (0, 1]",
        ),
        (
            "localisation.iou",
            {"threshold": 1.5},
            "threshold=1.5 - expected 'otsu' or a number in (0, 1]",
        ),
        ("localisation.iou", {"threshold": "mean"}, "threshold='mean' - expected 'otsu'"),
        (
            "localisation.hit_rate",
            {"criterion": "any"},
            "criterion='any' - expected one of 'max', 'iou'",
        ),
        ("localisation.hit_rate", {"threshold": -0.2}, "threshold=-0.2 - expected 'otsu'"),
        (
            "localisation.hit_rate",
            {"iou_cutoff": 1.0},
            "iou_cutoff=1.0 - expected a number in [0, 1)",
        ),
        (
            "localisation.hit_rate",
            {"iou_cutoff": -0.1},
            "iou_cutoff=-0.1 - expected a number in [0, 1)",
        ),
    ]
    for name in SANITY:
        cases += [
            (
                name,
                {"similarity": "pearson"},
                "similarity='pearson' - expected one of 'ssim', 'spearman'",
            ),
            (name, {"absolute": "true"}, "absolute='true' - expected True or False"),
            (name, {"over": "words"}, "over='words' - expected one of 'pixels', 'tokens'"),
            (name, {"over": "tokens", "similarity": "ssim"}, "over='tokens' - expected 'spearman'"),
            (name, {"pad_token": None}, "pad_token=None - expected an integer"),
        ]
    for name in SANITY[:3]:
        cases.append((name, {"seed": None}, "seed=None - expected an integer"))
    for name in SANITY[:2]:
        cases += [
            (name, {"max_layers": 0}, "max_layers=0 - expected None or a positive integer"),
            (name, {"max_layers": -2}, "max_layers=-2 - expected None or a positive integer"),
            (name, {"order": "random"}, "order='random' - expected one of 'top_down', 'bottom_up'"),
        ]
    for name in SENSITIVITY:
        cases += [
            (name, {"n_samples": 0}, "n_samples=0 - expected a positive integer"),
            (name, {"radius": 0}, "radius=0 - expected a positive number"),
            (name, {"radius": float("inf")}, "radius=inf - expected a positive number"),
            (name, {"chunk": 0}, "chunk=0 - expected a positive integer"),
        ]
    for name in COMPLEXITY:
        cases += [
            (name, {"over": "words"}, "over='words' - expected one of 'pixels', 'tokens'"),
            (name, {"pad_token": 1.5}, "pad_token=1.5 - expected an integer"),
        ]
    for name in THRESHOLDED:
        cases += [
            (name, {"threshold": 1.2}, "threshold=1.2 - expected a number in [0, 1]"),
            (name, {"threshold": "0.5"}, "threshold='0.5' - expected a number in [0, 1]"),
        ]
    cases += [
        (
            "classification.masked_accuracy",
            {"min_known": 0},
            "min_known=0 - expected a positive integer",
        ),
        ("classification.auroc", {"label": -1}, "label=-1 - expected an integer >= 0"),
    ]
    return cases


CASES = _cases()


@pytest.mark.parametrize("name", ALL_METRICS)
def test_defaults_pass(name: str) -> None:
    harness.get_metric(name).check_params()


@pytest.mark.parametrize(
    ("name", "params", "message"), CASES, ids=[f"{n}-{sorted(p)}" for n, p, _ in CASES]
)
def test_a_refused_value_is_named(name: str, params: dict[str, Any], message: str) -> None:
    metric = harness.get_metric(name, **params)
    with pytest.raises(PluginError, match=re.escape(message)) as err:
        metric.check_params()
    assert name in str(err.value)  # over + similarity keeps its older message (matched elsewhere)


def test_every_metric_has_a_refused_value() -> None:
    """Each metric with parameters is covered by the table (a new one must add its checks)."""
    covered = {name for name, _, _ in CASES}
    with_params = {n for n in ALL_METRICS if harness.get_metric(n).get_params()}
    assert with_params - covered == set()


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("faithfulness.road", {"percentages": [0, 99.5]}),
        ("faithfulness.road", {"percentages": range(10, 90, 20), "noise": 0}),
        ("faithfulness.correlation", {"runs": 2, "subset_size": 1, "seed": -3, "baseline": 0.5}),
        ("faithfulness.deletion_auc", {"baseline": -1, "pixels_per_step": 1, "output": "logit"}),
        ("faithfulness.comprehensiveness", {"bins": [0.5, 100], "removal": "replace"}),
        ("localisation.hit_rate", {"criterion": "iou", "threshold": 1, "iou_cutoff": 0}),
        ("localisation.iou", {"threshold": 0.25}),
        ("localisation.pointing_game", {"tolerance": 15}),
        ("localisation.top_k_intersection", {"k": 10**9}),
        ("sanity.cascading_randomisation", {"max_layers": 1, "order": "bottom_up"}),
        ("sanity.random_logit", {"over": "tokens", "similarity": "spearman", "pad_token": -1}),
        ("robustness.avg_sensitivity", {"radius": 1e-3, "n_samples": 1, "chunk": 1}),
        ("complexity.entropy", {"over": "tokens"}),
        ("classification.accuracy", {"threshold": 0}),
        ("classification.masked_accuracy", {"threshold": 1, "min_known": 1}),
        ("classification.auroc", {"label": 0}),
    ],
)
def test_documented_edge_values_pass(name: str, params: dict[str, Any]) -> None:
    harness.get_metric(name, **params).check_params()


class _Untouchable(nn.Module):
    """A module whose forward fails: any model call is a test failure."""

    def forward(self, x: Tensor) -> Tensor:
        raise AssertionError("the model ran")


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("faithfulness.region_perturbation", {"regions": 0}, "regions=0"),
        ("faithfulness.correlation", {"runs": 1}, "runs=1"),
        ("robustness.avg_sensitivity", {"n_samples": 0}, "n_samples=0"),
        ("sanity.cascading_randomisation", {"max_layers": 0}, "max_layers=0"),
        ("faithfulness.road", {"percentages": [100]}, "percentages=[100]"),
        ("faithfulness.monotonicity", {"steps": 0}, "steps=0"),
    ],
)
def test_evaluate_refuses_before_any_work(name: str, params: dict[str, Any], message: str) -> None:
    batch, targets = blob_batch(n=3, size=16)
    model = wrap_module(_Untouchable(), classes=3)
    attribution = Attribution(pixels=random_maps(3, 16))

    class _Refusing(InputXGradient):
        def explain(self, *args: Any, **kwargs: Any) -> Attribution:
            raise AssertionError("the explainer ran")

    metric = harness.get_metric(name, **params)
    with pytest.raises(PluginError, match=re.escape(message)):
        metric.evaluate(model, batch, targets, attribution, explainer=_Refusing())
    # the same call with defaults reaches the model (so the refusal above came first)
    with pytest.raises(Exception, match="ran"):
        harness.get_metric(name).evaluate(model, batch, targets, attribution, explainer=_Refusing())
    assert torch.equal(attribution.pixels, random_maps(3, 16))
