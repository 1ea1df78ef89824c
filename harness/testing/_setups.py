"""Ready-made inputs for explainer and metric checks, chosen from a plugin's tags."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from harness.contracts import (
    Attribution,
    Batch,
    Explainer,
    ExplanationMetric,
    Modality,
    Model,
    Need,
    Task,
)
from harness.contracts.tags import MetricTags
from harness.errors import CapabilityError
from harness.testing._select import (
    DATASETS,
    fixture_batch,
    fixture_dataset,
    fixture_model,
    fixture_targets,
)
from harness.testing._toy_attribution import ToyInputXGradient, ToyTokenOcclusion
from harness.testing._toy_cam import ToyAttentionSentence, ToyGradCAM
from harness.testing._toy_images import ToyLesions

_TEXT_NEEDS = frozenset({Need.RATIONALES, Need.TOKEN_ATTRIBUTIONS})
_SENTENCE_NEEDS = frozenset({Need.REFERENCES, Need.SENTENCES})


@dataclass(frozen=True)
class ExplainerSetup:
    """A trained toy model, a batch on its device and one target per row."""

    model: Model
    batch: Batch
    targets: Tensor
    task: Task


@dataclass(frozen=True)
class MetricSetup:
    """Everything an explanation metric scores: model, batch, targets, attribution, explainer."""

    model: Model
    batch: Batch
    targets: Tensor
    attribution: Attribution
    explainer: Explainer


@dataclass(frozen=True)
class ClassificationInputs:
    """Labels with random, perfect and inverted probabilities for one task."""

    labels: Tensor
    probs: Tensor
    perfect: Tensor
    inverted: Tensor


@dataclass(frozen=True)
class GenerationInputs:
    """Reference sentences, with perfect and unrelated hypotheses."""

    references: list[list[str]]
    perfect: list[str]
    unrelated: list[str]


def _task_for(modality: Modality, tasks: frozenset[Task] | None = None) -> Task:
    for task in (Task.MULTICLASS, Task.MULTILABEL):
        if (modality, task) in DATASETS and (tasks is None or task in tasks):
            return task
    raise CapabilityError(
        f"harness.testing: no fixture dataset for {modality.value} with tasks "
        f"{sorted(t.value for t in tasks or ())}."
    )


def explainer_setup(
    explainer: Explainer, modality: Modality, rows: int = 4, task: Task | None = None
) -> ExplainerSetup:
    """Return a setup for ``explainer`` on ``modality`` (and ``task``, default the first fixture's).

    Explainers that need neither gradients nor a target layer get a
    black-box model where one exists, so hidden needs surface.
    """
    needs = explainer.get_tags().needs
    task = task or _task_for(modality)
    black_box = not needs & {Need.GRADIENTS, Need.TARGET_LAYER}
    model = fixture_model(modality, task, black_box=black_box)
    batch = fixture_batch(fixture_dataset(modality, task), rows).to(model.device)
    return ExplainerSetup(model, batch, fixture_targets(batch, task), task)


def _metric_modality(tags: MetricTags) -> Modality:
    mods = tags.modalities
    preferred: tuple[Modality, ...]
    if tags.needs & _TEXT_NEEDS:
        preferred = (Modality.TEXT, Modality.IMAGE_TEXT)
    else:
        preferred = (Modality.IMAGE, Modality.IMAGE_TEXT, Modality.TEXT)
    for modality in preferred:
        if modality in mods:
            return modality
    raise CapabilityError(
        f"harness.testing: no fixture for modalities {sorted(m.value for m in mods)} "
        f"with needs {sorted(n.value for n in tags.needs)}."
    )


def metric_setup(metric: ExplanationMetric, rows: int = 4) -> MetricSetup:
    """Return a setup matching ``metric``'s modalities, tasks and needs.

    A metric needing ``Need.LABEL_RANDOMISED_MODEL`` gets the same toy model
    trained on permuted labels as ``model.label_randomised``, as the runner does.
    """
    tags = metric.get_tags()
    modality = _metric_modality(tags)
    task = _task_for(modality, tags.tasks)
    explainer: Explainer
    if tags.needs & _SENTENCE_NEEDS:
        if (modality, task) != (Modality.IMAGE, Task.MULTICLASS):
            raise CapabilityError("harness.testing: sentence fixtures are image / multi-class only")
        explainer = ToyAttentionSentence()
    elif modality is Modality.IMAGE:
        explainer = ToyInputXGradient()
    elif modality is Modality.IMAGE_TEXT and tags.needs & _TEXT_NEEDS:
        explainer = ToyTokenOcclusion()
    else:
        explainer = ToyGradCAM()
    model = fixture_model(modality, task)
    if Need.LABEL_RANDOMISED_MODEL in tags.needs:
        model.label_randomised = fixture_model(modality, task, permuted=True)
    batch = fixture_batch(fixture_dataset(modality, task), rows).to(model.device)
    targets = fixture_targets(batch, task)
    with torch.random.fork_rng(devices=[]):
        attribution = explainer.explain(model, batch, targets)
    return MetricSetup(model, batch, targets, attribution, explainer)


def classification_inputs(task: Task, rows: int = 12, classes: int = 3) -> ClassificationInputs:
    """Return labels covering every class (or every CheXpert state) and three probability sets."""
    g = torch.Generator().manual_seed(0)
    if task is Task.MULTICLASS:
        labels = torch.arange(rows) % classes
        probs = torch.softmax(torch.randn(rows, classes, generator=g), dim=1)
        perfect = torch.full((rows, classes), 0.1 / (classes - 1))
        perfect[torch.arange(rows), labels] = 0.9
        inverted = perfect[:, torch.arange(classes).roll(-1)]
        return ClassificationInputs(labels, probs, perfect, inverted)
    states = torch.tensor([1, 0, -1, -2])
    labels = states[(torch.arange(rows)[:, None] + torch.arange(classes)[None]) % 4]
    probs = torch.sigmoid(torch.randn(rows, classes, generator=g))
    perfect = torch.where(labels == 1, 0.9, torch.where(labels == 0, 0.1, 0.5))
    inverted = torch.where(labels == 1, 0.1, torch.where(labels == 0, 0.9, 0.5))
    return ClassificationInputs(labels, probs, perfect, inverted)


def generation_inputs(rows: int = 4) -> GenerationInputs:
    """Return the toy lesions' reference sentences with perfect and unrelated hypotheses."""
    batch = fixture_batch(ToyLesions(), rows)
    references = [list(r) for r in batch.references or ()]
    return GenerationInputs(
        references=references,
        perfect=[r[0] for r in references],
        unrelated=["No fracture was identified on this study"] * len(references),
    )
