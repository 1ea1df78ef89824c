"""Each check fails on a plugin broken in the way it guards against (the checks can fail)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from contract._hash_split import HashSplitLesions
from harness import (
    Attribution,
    Batch,
    ClassificationMetric,
    ContractViolation,
    DatasetInfo,
    ExplainerTags,
    ExplanationMetric,
    MetricKind,
    MetricTags,
    Modality,
    ModelTags,
    Need,
    Output,
    PluginError,
    Sample,
    Task,
)
from harness.testing import fixtures as fx
from harness.testing import plugin_checks


def run(plugin: Any, check: str) -> None:
    checks = dict(plugin_checks(plugin))
    assert check in checks, f"{check} does not apply to {plugin!r}; has {sorted(checks)}"
    checks[check](plugin)


def fails(plugin: Any, check: str, match: str) -> None:
    with pytest.raises(ContractViolation, match=match) as info:
        run(plugin, check)
    assert check in str(info.value) or "returned" in str(info.value)


# --- shared -------------------------------------------------------------------------------


class Positional(fx.ToyGradCAM):
    def __init__(self, relu: bool = True) -> None:
        self.relu = relu


class WithObject(fx.ToyGradCAM):
    def __init__(self, *, relu: bool = True, helper: object = None) -> None:
        self.relu = relu
        self.helper = helper


class Misnamed(fx.ToyGradCAM):
    name: ClassVar[str] = "GradCAM"


class Uncited(fx.ToyGradCAM):
    citation: ClassVar[str] = ""


class WrongTagType(fx.ToyGradCAM):
    tags: ClassVar = ModelTags()


class StringModalities(fx.ToyGradCAM):
    tags: ClassVar[ExplainerTags] = ExplainerTags(modalities=frozenset({"image"}))  # type: ignore[arg-type]


class RenamedParameter(fx.ToyGradCAM):
    """Stores its parameter under another name than the keyword."""

    def __init__(self, *, relu: bool = True) -> None:
        self.use_relu = relu


def test_a_parameter_stored_under_another_name_is_a_plugin_error() -> None:
    with pytest.raises(PluginError, match=r"parameter 'relu' - expected __init__ to store it as"):
        RenamedParameter().get_params()


@pytest.mark.parametrize(
    ("plugin", "check", "match"),
    [
        (Positional(), "check_init_signature", "keyword-only parameters"),
        (WithObject(helper=object()), "check_params_hash", "JSON-like values"),
        (Misnamed(), "check_metadata", "snake_case '<namespace>.<method>'"),
        (Uncited(), "check_metadata", "citation - expected a non-empty string"),
        (WrongTagType(), "check_tags", "expected ExplainerTags, got ModelTags"),
        (StringModalities(), "check_tags", r"tags.modalities - expected frozenset\[.*Modality\]"),
    ],
    ids=lambda v: v if isinstance(v, str) and v.startswith("check_") else None,
)
def test_shared_checks_fail(plugin: Any, check: str, match: str) -> None:
    fails(plugin, check, match)


# --- datasets -----------------------------------------------------------------------------


class Overlapping(fx.ToyLesions):
    def splits(self) -> Mapping[str, Sequence[str]]:
        out = dict(super().splits())
        out["train"] = [*out["train"], out["test"][0]]
        return out


class GlobalShuffle(fx.ToyLesions):
    def splits(self) -> Mapping[str, Sequence[str]]:
        ids = [f"lesion-{i:04d}" for i in torch.randperm(self.n).tolist()]
        return {"train": ids[:16], "val": ids[16:24], "test": ids[24:]}


class Int32Labels(fx.ToyLesions):
    def _get(self, sample_id: str) -> Sample:
        s = super()._get(sample_id)
        return dataclasses.replace(s, label=s.label.int())


class DropsMasks(fx.ToyLesions):
    def _get(self, sample_id: str) -> Sample:
        return dataclasses.replace(super()._get(sample_id), mask=None)


class SharedStream(fx.ToyLesions):
    def _get(self, sample_id: str) -> Sample:
        if not hasattr(self, "_stream"):
            self._stream = torch.Generator().manual_seed(0)
        s = super()._get(sample_id)
        assert s.image is not None
        return dataclasses.replace(
            s, image=s.image + torch.rand(s.image.shape, generator=self._stream)
        )


class WrongTask(fx.ToyLesions):
    def info(self) -> DatasetInfo:
        return dataclasses.replace(super().info(), task=Task.MULTILABEL)


@pytest.mark.parametrize(
    ("plugin", "check", "match"),
    [
        (Overlapping(), "check_dataset_splits", "unique within and across splits"),
        (GlobalShuffle(), "check_dataset_splits_deterministic", "identical ids in the same order"),
        (Int32Labels(), "check_dataset_load", r"expected int64 \(6,\), got torch.int32"),
        (DropsMasks(), "check_dataset_load", "batch.masks - expected present exactly when"),
        (SharedStream(), "check_dataset_load_order", "rows of load"),
        (SharedStream(), "check_dataset_load_deterministic", "identical batches"),
        (WrongTask(), "check_dataset_info", "modality / task"),
        (HashSplitLesions(), "check_dataset_splits_deterministic", "fresh Python process"),
    ],
    ids=lambda v: v if isinstance(v, str) and v.startswith("check_") else None,
)
def test_dataset_checks_fail(plugin: Any, check: str, match: str) -> None:
    fails(plugin, check, match)


# --- models -------------------------------------------------------------------------------


class BatchDependent(fx.ToyCNN):
    def _forward(self, batch: Batch) -> Tensor:
        out = super()._forward(batch)
        return out - out.mean(dim=0, keepdim=True)


class LazyFit(fx.ToyCNN):
    def fit(self, dataset: Any, ids: Sequence[str], context: Any) -> None:
        return None


class TrainModeDropout(fx.ToyCNN):
    tags: ClassVar[ModelTags] = ModelTags(target_layer="0.features.3")

    def _build_module(self, info: DatasetInfo) -> nn.Module:
        return nn.Sequential(super()._build_module(info), nn.Dropout(0.5))

    def fit(self, dataset: Any, ids: Sequence[str], context: Any) -> None:
        super().fit(dataset, ids, context)
        self.module.train()


class PartialState(fx.ToyCNN):
    def state_dict(self) -> dict[str, Tensor]:
        return {k: v for k, v in super().state_dict().items() if k.startswith("head")}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.module.load_state_dict(state, strict=False)


class LinearTarget(fx.ToyCNN):
    tags: ClassVar[ModelTags] = ModelTags(target_layer="head.2")


class NaNLogits(fx.ToyCNN):
    def _forward(self, batch: Batch) -> Tensor:
        return super()._forward(batch) * float("nan")


class SoftmaxCNN(fx.ToyCNN):
    """A model whose forward ends in a softmax: it returns probabilities, not logits."""

    def _build_module(self, info: DatasetInfo) -> nn.Module:
        return nn.Sequential(super()._build_module(info), nn.Softmax(dim=1))


@pytest.mark.parametrize(
    ("plugin", "check", "match"),
    [
        (BatchDependent(), "check_model_batch_independence", "the rows scored in one batch"),
        (LazyFit(), "check_model_fit", "a changed state"),
        (TrainModeDropout(), "check_model_fit", r"identical on a repeat \(eval mode\)"),
        (PartialState(), "check_model_state_round_trip", "the original logits"),
        (LinearTarget(), "check_model_target_layer", r"\(4, C, h, w\)"),
        (NaNLogits(), "check_model_predict", "non-finite"),
        (SoftmaxCNN(epochs=1), "check_model_predict", "drop the softmax.*probabilities"),
    ],
    ids=lambda v: v if isinstance(v, str) and v.startswith("check_") else None,
)
def test_model_checks_fail(plugin: Any, check: str, match: str) -> None:
    fails(plugin, check, match)


# --- explainers ---------------------------------------------------------------------------


class BatchNormalised(fx.ToyGradCAM):
    def _explain(self, model: Any, batch: Batch, targets: Tensor) -> Attribution:
        out = super()._explain(model, batch, targets)
        return dataclasses.replace(
            out, pixels=None if out.pixels is None else out.pixels / out.pixels.max()
        )


class ExtraChannels(fx.ToyInputXGradient):
    def _explain(self, model: Any, batch: Batch, targets: Tensor) -> Attribution:
        assert batch.images is not None
        return Attribution(pixels=torch.zeros(len(batch), 2, *batch.images.shape[-2:]))


class Noisy(fx.ToyInputXGradient):
    def _explain(self, model: Any, batch: Batch, targets: Tensor) -> Attribution:
        out = super()._explain(model, batch, targets)
        assert out.pixels is not None
        return Attribution(pixels=out.pixels + torch.randn_like(out.pixels))


class FreshEntropy(fx.ToyInputXGradient):
    tags: ClassVar[ExplainerTags] = dataclasses.replace(
        fx.ToyInputXGradient.tags, deterministic=False
    )

    def _explain(self, model: Any, batch: Batch, targets: Tensor) -> Attribution:
        assert batch.images is not None
        noise = np.random.default_rng().random(tuple(batch.images.shape[-2:]))
        return Attribution(
            pixels=torch.as_tensor(noise, dtype=torch.float32).expand(len(batch), -1, -1)
        )


class TargetBlind(fx.ToyInputXGradient):
    def _explain(self, model: Any, batch: Batch, targets: Tensor) -> Attribution:
        assert batch.images is not None
        return Attribution(pixels=batch.images.mean(dim=1))


class LeavesHook(fx.ToyGradCAM):
    def _explain(self, model: Any, batch: Batch, targets: Tensor) -> Attribution:
        model.target_layer().register_forward_hook(lambda *_: None)
        return super()._explain(model, batch, targets)


class LeavesTrainMode(fx.ToyGradCAM):
    def _explain(self, model: Any, batch: Batch, targets: Tensor) -> Attribution:
        model.module.train()
        return super()._explain(model, batch, targets)


class BatchDrawn(fx.ToyGradCAM):
    """A stochastic explainer drawing one noise stream per call, not per sample id."""

    tags: ClassVar[ExplainerTags] = dataclasses.replace(fx.ToyGradCAM.tags, deterministic=False)

    def _explain(self, model: Any, batch: Batch, targets: Tensor) -> Attribution:
        out = super()._explain(model, batch, targets)
        assert out.pixels is not None
        return Attribution(pixels=out.pixels + 0.1 * torch.rand_like(out.pixels))


class AlwaysRGB(fx.ToyGradCAM):
    """Hard-codes three colour channels in its maps; images only, so only the 1-channel fixture catches it."""

    tags: ClassVar[ExplainerTags] = dataclasses.replace(
        fx.ToyGradCAM.tags, modalities=frozenset({Modality.IMAGE})
    )

    def _explain(self, model: Any, batch: Batch, targets: Tensor) -> Attribution:
        out = super()._explain(model, batch, targets)
        assert out.pixels is not None
        return Attribution(pixels=out.pixels.unsqueeze(1).expand(-1, 3, -1, -1).contiguous())


class UndeclaredTokens(fx.ToyGradCAM):
    tags: ClassVar[ExplainerTags] = dataclasses.replace(
        fx.ToyGradCAM.tags, output=frozenset({Output.PIXEL})
    )


@pytest.mark.parametrize(
    ("plugin", "check", "match"),
    [
        (BatchNormalised(), "check_explainer_batch_independence", "normalise per row"),
        (
            ExtraChannels(),
            "check_explainer_output",
            r"shape \(4, 2, 32, 32\) for inputs \(4, 3, 32, 32\)",
        ),
        (Noisy(), "check_explainer_deterministic", "tags.deterministic is True"),
        (FreshEntropy(), "check_explainer_reproducible", "use torch's global RNG"),
        (TargetBlind(), "check_explainer_target_sensitivity", "the same output for every target"),
        (LeavesHook(), "check_explainer_does_not_mutate", "changed hooks"),
        (LeavesTrainMode(), "check_explainer_does_not_mutate", "changed modes"),
        (
            UndeclaredTokens(),
            "check_explainer_output",
            r"outputs on text data - expected only tags.output",
        ),
        (BatchDrawn(), "check_explainer_batch_independence", "harness.draws.row_seeds"),
        (
            AlwaysRGB(),
            "check_explainer_output",
            r"on 1-channel image data.*returned attributions of shape \(4, 3,",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and v.startswith("check_") else None,
)
def test_explainer_checks_fail(plugin: Any, check: str, match: str) -> None:
    fails(plugin, check, match)


def test_hidden_gradient_need_fails_on_a_black_box_model() -> None:
    class Sneaky(fx.ToyInputXGradient):
        tags: ClassVar[ExplainerTags] = dataclasses.replace(
            fx.ToyInputXGradient.tags, needs=frozenset()
        )

    with pytest.raises(RuntimeError, match="does not require grad"):
        run(Sneaky(), "check_explainer_output")


# --- metrics ------------------------------------------------------------------------------


class MassMetric(ExplanationMetric):
    """Share of |attribution| inside the target mask; subclasses break it."""

    name: ClassVar[str] = "test.mass"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = "test"
    tags: ClassVar[MetricTags] = MetricTags(
        kind=MetricKind.LOCALISATION, needs=frozenset({Need.MASKS, Need.PIXEL_ATTRIBUTIONS})
    )
    higher_is_better: ClassVar[bool] = True
    bounds: ClassVar[tuple[float, float] | None] = (0.0, 1.0)

    def _score(
        self, model: Any, batch: Batch, targets: Tensor, attribution: Attribution, explainer: Any
    ) -> Tensor:
        assert attribution.pixels is not None
        mass = attribution.pixels.abs()
        return (mass * batch.target_masks(targets)).sum((1, 2)) / self._total(mass)

    def _total(self, mass: Tensor) -> Tensor:
        """Each row's own mass (the sound denominator; broken variants replace it)."""
        return mass.sum((1, 2)).clamp(min=1e-12)


class MassWithoutEps(MassMetric):
    """Divides by the map's mass without an eps: an all-zero map gives NaN."""

    def _total(self, mass: Tensor) -> Tensor:
        return mass.sum((1, 2))


class UndeclaredMasks(MassMetric):
    tags: ClassVar[MetricTags] = MetricTags(kind=MetricKind.LOCALISATION)


class BatchShare(MassMetric):
    def _total(self, mass: Tensor) -> Tensor:
        return mass.sum()  # the whole batch's mass: a row's score depends on its neighbours


class Doubled(MassMetric):
    def _score(self, *args: Any) -> Tensor:
        return 2.0 + super()._score(*args)


class InheritsDirection(ExplanationMetric):
    name: ClassVar[str] = "test.inherits_direction"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = "test"
    _score = MassMetric._score


class Jittery(MassMetric):
    def _score(self, *args: Any) -> Tensor:
        return super()._score(*args) * (0.9 + 0.1 * torch.rand(()))


class RandomisesInPlace(MassMetric):
    def _score(self, model: Any, *args: Any) -> Tensor:
        model.module.head[2].reset_parameters()
        return super()._score(model, *args)


class LossAsScore(ClassificationMetric):
    name: ClassVar[str] = "test.loss_as_score"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = "test"
    higher_is_better: ClassVar[bool] = True
    tags: ClassVar[MetricTags] = MetricTags(
        kind=MetricKind.CLASSIFICATION, tasks=frozenset({Task.MULTICLASS})
    )

    def _compute(self, labels: Tensor, probs: Tensor, task: Task) -> float:
        return float(1.0 - probs[torch.arange(len(labels)), labels].mean())


@pytest.mark.parametrize(
    ("plugin", "check", "match"),
    [
        (UndeclaredMasks(), "check_metric_needs_declared", "declare Need.MASKS"),
        (BatchShare(), "check_metric_batch_independence", "normalise per row"),
        (Doubled(), "check_metric_scores", r"within bounds \(0.0, 1.0\)"),
        (InheritsDirection(), "check_metric_declarations", "inherited from Metric"),
        (Jittery(), "check_metric_deterministic", "tags.deterministic is True"),
        (RandomisesInPlace(), "check_metric_does_not_mutate", "changed logits, state"),
        (LossAsScore(), "check_classification_metric_direction", "perfect higher"),
        # the non-finite row is named; ordinary maps score fine (check_metric_scores passes)
        (MassWithoutEps(), "check_metric_zero_map", r"row 0's map all zeros.*\(row\(s\) 0 of"),
    ],
    ids=lambda v: v if isinstance(v, str) and v.startswith("check_") else None,
)
def test_metric_checks_fail(plugin: Any, check: str, match: str) -> None:
    fails(plugin, check, match)


def test_a_metric_without_eps_scores_ordinary_maps() -> None:
    run(MassWithoutEps(), "check_metric_scores")


def test_a_sound_metric_passes_every_check() -> None:
    for name, check in plugin_checks(MassMetric()):
        check(MassMetric())
        assert name


class TwinGap(MassMetric):
    """Data-randomisation style: how far the label-randomised twin's logits move."""

    tags: ClassVar[MetricTags] = MetricTags(
        kind=MetricKind.SANITY, needs=frozenset({Need.LABEL_RANDOMISED_MODEL})
    )
    bounds: ClassVar[tuple[float, float] | None] = (0.0, 1.0)

    def _score(
        self, model: Any, batch: Batch, targets: Tensor, attribution: Attribution, explainer: Any
    ) -> Tensor:
        from harness import CapabilityError

        twin = model.label_randomised
        if twin is None:
            raise CapabilityError("needs the label-randomised twin", plugin=self.name)
        rows = torch.arange(len(batch))
        gap = model.logits(batch)[rows, targets] - twin.logits(batch)[rows, targets]
        return torch.sigmoid(gap.detach().abs())


def test_label_randomised_twin_is_provided_and_its_need_enforced() -> None:
    checks = dict(plugin_checks(TwinGap()))
    for name in (
        "check_metric_scores",
        "check_metric_needs_declared",
        "check_metric_does_not_mutate",
    ):
        checks[name](TwinGap())
