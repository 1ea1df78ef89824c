"""Boundary checks: bad plugin output becomes a ContractViolation naming plugin and shapes."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import pytest
import torch
from torch import Tensor

from harness import (
    Attribution,
    Batch,
    CapabilityError,
    ContractViolation,
    DataError,
    Explainer,
    ExplainerTags,
    ExplanationMetric,
    MetricKind,
    MetricTags,
    Model,
    Need,
    PluginError,
)
from harness.contracts import FitContext, Sample, Task
from harness.contracts.validation import (
    check_attribution,
    check_labels,
    check_logits,
    check_scores,
)
from harness.testing.fixtures import ToyAbstracts, ToyCNN, ToyLesions, ToyNaiveBayes


class Returns(Explainer):
    """Returns whatever ``out`` holds, to exercise the validation of explain()."""

    name: ClassVar[str] = "test.returns"
    tags: ClassVar[ExplainerTags] = ExplainerTags()

    def __init__(self, *, out: object = None) -> None:
        self.out = out

    def _explain(self, model: Model, batch: Batch, targets: Tensor) -> Attribution:
        return self.out  # type: ignore[return-value]


def _image_batch(n: int = 8, c: int = 1, size: int = 16) -> Batch:
    return Batch(
        ids=tuple(map(str, range(n))),
        labels=torch.zeros(n, dtype=torch.long),
        images=torch.rand(n, c, size, size),
    )


def _model() -> ToyCNN:
    model = ToyCNN()
    model.build(ToyLesions().info())
    return model


def test_wrong_pixel_shape_names_plugin_and_shapes():
    batch = _image_batch()
    explainer = Returns(out=Attribution(pixels=torch.zeros(8, 3, 16, 16)))
    expected = (
        "explainer 'test.returns' returned attributions of shape (8, 3, 16, 16) for inputs "
        "(8, 1, 16, 16); expected (8, 1, 16, 16) or (8, 16, 16)"
    )
    with pytest.raises(ContractViolation) as info:
        check_attribution(explainer.out, batch, explainer=explainer)
    assert str(info.value) == expected
    assert info.value.plugin == "test.returns"


def test_distribution_and_version_appear_in_messages():
    cls = type("Shipped", (Returns,), {"__module__": "harness.testing.shipped"})
    explainer = cls(out=Attribution(pixels=torch.zeros(2, 5, 5)))
    with pytest.raises(
        ContractViolation, match=r"explainer 'test.returns' \(harness 0\.1\.0\) returned"
    ):
        check_attribution(explainer.out, _image_batch(2), explainer=explainer)


def test_channel_attributions_are_summed():
    pixels = torch.ones(4, 3, 8, 8)
    out = check_attribution(Attribution(pixels=pixels), _image_batch(4, 3, 8), explainer=Returns())
    assert (
        out.pixels is not None
        and out.pixels.shape == (4, 8, 8)
        and float(out.pixels[0, 0, 0]) == 3.0
    )


@pytest.mark.parametrize(
    ("out", "message"),
    [
        (
            Attribution(pixels=torch.full((2, 16, 16), float("nan"))),
            r"returned 512 non-finite value\(s\) \(NaN or inf\) in pixel attributions "
            r"\(row\(s\) 0, 1 of 2\)",
        ),
        (Attribution(), "returned an empty Attribution"),
        (torch.zeros(2, 16, 16), "returned Tensor; expected harness.Attribution"),
        (
            Attribution(tokens=torch.zeros(2, 5)),
            r"token attributions of shape \(2, 5\); expected None",
        ),
        (Attribution(sentences=("only one",)), "returned 1 sentences for 2 rows"),
    ],
)
def test_bad_outputs_are_contract_violations(out, message):
    with pytest.raises(ContractViolation, match=message):
        Returns(out=out).explain(_model(), _image_batch(2, 3), torch.zeros(2, dtype=torch.long))


def test_logits_are_checked():
    model = _model()
    with pytest.raises(
        ContractViolation,
        match=r"model 'toy.cnn' \(harness 0\.1\.0\) returned logits \(4,\); expected \(4, K\)",
    ):
        check_logits(torch.zeros(4), 4, model=model)
    with pytest.raises(ContractViolation, match="non-finite"):
        check_logits(torch.tensor([[0.0, float("inf")]]), 1, model=model)
    assert check_logits(torch.zeros(3, 2), 3, model=model).shape == (3, 2)


class MaskMetric(ExplanationMetric):
    name: ClassVar[str] = "test.mask_metric"
    tags: ClassVar[MetricTags] = MetricTags(
        kind=MetricKind.LOCALISATION, needs=frozenset({Need.MASKS})
    )

    def _score(self, model, batch, targets, attribution, explainer):  # noqa: ANN001, ANN202
        return torch.zeros(len(batch))


def test_scores_are_checked():
    metric = MaskMetric()
    with pytest.raises(
        ContractViolation, match=r"returned scores of shape \(2, 1\); expected \(3,\)"
    ):
        check_scores(torch.zeros(2, 1), 3, metric=metric)
    with pytest.raises(ContractViolation, match="non-finite"):
        check_scores(torch.tensor([0.0, float("nan")]), 2, metric=metric)
    assert (
        check_scores(torch.zeros(2, dtype=torch.float32), 2, metric=metric).dtype == torch.float64
    )


def test_metric_needs_raise_capability_errors():
    batch = _image_batch(2, 3)
    with pytest.raises(CapabilityError, match="needs ground-truth masks"):
        MaskMetric().score(
            _model(),
            batch,
            torch.zeros(2, dtype=torch.long),
            Attribution(pixels=torch.zeros(2, 16, 16)),
        )


def test_non_finite_attributions_are_refused_naming_the_row():
    batch = _image_batch(3, 3)
    batch = Batch(
        ids=batch.ids,
        labels=batch.labels,
        images=batch.images,
        masks=torch.ones(3, 3, 16, 16, dtype=torch.bool),
    )
    maps = torch.zeros(3, 16, 16)
    maps[2, 4, 4] = float("inf")
    with pytest.raises(
        DataError, match="'test.mask_metric': pixel attributions: row 2 has non-finite"
    ):
        MaskMetric().score(
            _model(), batch, torch.zeros(3, dtype=torch.long), Attribution(pixels=maps)
        )
    maps[2, 4, 4] = 0.0
    assert MaskMetric().score(
        _model(), batch, torch.zeros(3, dtype=torch.long), Attribution(pixels=maps)
    ).shape == (3,)


def test_explainer_needs_raise_capability_errors():
    class NeedsGradients(Returns):
        tags: ClassVar[ExplainerTags] = ExplainerTags(needs=frozenset({Need.GRADIENTS}))

    class NeedsLayer(Returns):
        tags: ClassVar[ExplainerTags] = ExplainerTags(needs=frozenset({Need.TARGET_LAYER}))

    black_box = ToyNaiveBayes()
    black_box.build(ToyAbstracts().info())
    batch = ToyAbstracts().load(["abstract-0000"])
    with pytest.raises(
        CapabilityError, match="needs gradients; model 'toy.naive_bayes' is black-box"
    ):
        NeedsGradients().explain(black_box, batch, torch.zeros(1, dtype=torch.long))
    with pytest.raises(CapabilityError, match="needs a target layer"):
        NeedsLayer().explain(black_box, batch, torch.zeros(1, dtype=torch.long))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"epochs": -1}, "epochs - expected an integer >= 0, got -1"),
        ({"batch_size": 0}, "batch_size - expected an integer >= 1, got 0"),
        ({"lr": 0.0}, "lr - expected a positive number, got 0.0"),
    ],
)
def test_bad_training_settings_are_named(params: dict, message: str) -> None:
    from harness.contracts import FitContext

    dataset = ToyLesions()
    model = ToyCNN(**params)
    model.build(dataset.info())
    with pytest.raises(PluginError, match=message):
        model.fit(
            dataset, dataset.splits()["train"], FitContext(device=torch.device("cpu"), seed=0)
        )


def test_a_misspelt_cam_layer_fails_the_cell_with_suggestions() -> None:
    model = ToyCNN(cam_layer="features.nosuch")
    model.build(ToyLesions().info())
    with pytest.raises(PluginError, match="cam_layer - no layer named 'features.nosuch'") as err:
        model.target_layer()
    assert not isinstance(err.value, CapabilityError)  # a configuration error, not a skip


class OutOfRangeLabels(ToyLesions):
    """ToyLesions whose every fifth sample carries class 7 of 2."""

    def _get(self, sample_id: str) -> Sample:
        sample = super()._get(sample_id)
        if self._index(sample_id) % 5 == 3:
            return dataclasses.replace(sample, label=torch.tensor(7))
        return sample


def test_training_names_a_sample_whose_label_is_out_of_range() -> None:
    data = OutOfRangeLabels(n=10)
    model = ToyCNN(epochs=1)
    model.build(data.info())
    model.expected_outputs = data.info().num_outputs
    ids = list(data.splits()["train"])
    with pytest.raises(
        DataError, match=r"sample 'lesion-\d+' has label 7 - expected a class index in \[0, 2\)"
    ):
        model.fit(data, ids, FitContext(torch.device("cpu")))


def test_multilabel_states_outside_chexpert_s_are_named() -> None:
    batch = Batch(ids=("a", "b"), labels=torch.tensor([[1, 0, -2], [1, 2, 0]]))
    with pytest.raises(DataError, match=r"sample 'b' has label \[1, 2, 0\] - expected CheXpert"):
        check_labels(batch, Task.MULTILABEL, 3, dataset=ToyLesions())
    check_labels(
        Batch(ids=("a",), labels=torch.tensor([[1, -1, -2]])),
        Task.MULTILABEL,
        3,
        dataset=ToyLesions(),
    )
