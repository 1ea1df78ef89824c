"""Capability tags: what each plugin offers or needs, declared as data.

The planner matches an explainer's or metric's ``needs`` against what the
dataset ``provides`` and what the model and explainer offer; an unmet need
becomes the reason of a skipped cell.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Modality(StrEnum):
    """Input modality of a dataset or model."""

    IMAGE = "image"
    TEXT = "text"
    IMAGE_TEXT = "image+text"


class Task(StrEnum):
    """Prediction task: one class per sample, or a multi-hot label vector."""

    MULTICLASS = "multiclass"
    MULTILABEL = "multilabel"


class Provides(StrEnum):
    """Ground truth a dataset carries for explanation metrics."""

    MASKS = "masks"
    RATIONALES = "rationales"
    REFERENCES = "references"


class Output(StrEnum):
    """What an explainer returns."""

    PIXEL = "pixel"
    TOKEN = "token"
    SENTENCE = "sentence"


class Need(StrEnum):
    """A requirement of an explainer or a metric.

    ``GRADIENTS``: a differentiable torch model. ``TARGET_LAYER``: a model that
    names a convolutional layer for CAM methods. ``MASKS`` / ``RATIONALES`` /
    ``REFERENCES``: dataset ground truth. ``PIXEL_ATTRIBUTIONS`` /
    ``TOKEN_ATTRIBUTIONS`` / ``SENTENCES``: what the explainer must output.
    ``RANDOMISABLE``: a model whose parameters can be re-initialised layer by layer.
    ``EXPLAINER``: the metric re-runs the explainer (sanity, robustness).
    ``LABEL_RANDOMISED_MODEL``: the runner also trains the model on permuted
    labels and hands it over as ``model.label_randomised`` (data randomisation).
    """

    GRADIENTS = "gradients"
    TARGET_LAYER = "target_layer"
    MASKS = "masks"
    RATIONALES = "rationales"
    REFERENCES = "references"
    PIXEL_ATTRIBUTIONS = "pixel_attributions"
    TOKEN_ATTRIBUTIONS = "token_attributions"
    SENTENCES = "sentences"
    RANDOMISABLE = "randomisable"
    EXPLAINER = "explainer"
    LABEL_RANDOMISED_MODEL = "label_randomised_model"


class MetricKind(StrEnum):
    """The metric taxonomy; also the folder layout of ``harness/metrics``."""

    CLASSIFICATION = "classification"
    TEXT_GENERATION = "text"
    FAITHFULNESS = "faithfulness"
    LOCALISATION = "localisation"
    SANITY = "sanity"
    ROBUSTNESS = "robustness"
    COMPLEXITY = "complexity"


ALL_MODALITIES: frozenset[Modality] = frozenset(Modality)
ALL_TASKS: frozenset[Task] = frozenset(Task)


@dataclass(frozen=True)
class DatasetTags:
    """What a dataset is and which ground truth it provides."""

    modality: Modality = Modality.IMAGE
    task: Task = Task.MULTICLASS
    provides: frozenset[Provides] = frozenset()


@dataclass(frozen=True)
class ModelTags:
    """What a model accepts and offers.

    ``target_layer`` is the dotted name of the default layer for CAM methods,
    or None when the model has none (black-box or no conv layer).
    """

    modalities: frozenset[Modality] = frozenset({Modality.IMAGE})
    tasks: frozenset[Task] = ALL_TASKS
    differentiable: bool = True
    randomisable: bool = True
    target_layer: str | None = None


@dataclass(frozen=True)
class ExplainerTags:
    """What an explainer applies to, needs and returns.

    ``target_sensitive`` is False for explainers that ignore the explained
    output by design (controls: random maps, edge detectors).
    """

    modalities: frozenset[Modality] = frozenset({Modality.IMAGE})
    needs: frozenset[Need] = frozenset()
    deterministic: bool = True
    target_sensitive: bool = True
    output: frozenset[Output] = field(default_factory=lambda: frozenset({Output.PIXEL}))


@dataclass(frozen=True)
class MetricTags:
    """Which family a metric belongs to and what it needs."""

    kind: MetricKind = MetricKind.FAITHFULNESS
    needs: frozenset[Need] = frozenset()
    modalities: frozenset[Modality] = ALL_MODALITIES
    tasks: frozenset[Task] = ALL_TASKS
    deterministic: bool = True
