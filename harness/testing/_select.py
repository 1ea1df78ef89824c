"""Choice of the toy dataset and the trained toy model for a (modality, task) pair."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable

import torch
from torch import Tensor

from harness.contracts import Batch, Dataset, FitContext, Modality, Model, Task
from harness.errors import CapabilityError
from harness.testing._toy_abstracts import ToyAbstracts
from harness.testing._toy_black_box import ToyBlackBoxCNN, ToyNaiveBayes
from harness.testing._toy_images import ToyChestXray, ToyLesions
from harness.testing._toy_models import ToyCNN, ToyFusion, ToyTextGridCNN
from harness.testing._toy_reports import ToyImageReport, ToyReports

DATASETS: dict[tuple[Modality, Task], type[Dataset]] = {
    (Modality.IMAGE, Task.MULTICLASS): ToyLesions,
    (Modality.IMAGE, Task.MULTILABEL): ToyChestXray,
    (Modality.TEXT, Task.MULTICLASS): ToyAbstracts,
    (Modality.TEXT, Task.MULTILABEL): ToyReports,
    (Modality.IMAGE_TEXT, Task.MULTILABEL): ToyImageReport,
}
MODELS: dict[tuple[Modality, bool], type[Model]] = {
    (Modality.IMAGE, False): ToyCNN,
    (Modality.IMAGE, True): ToyBlackBoxCNN,
    (Modality.TEXT, False): ToyTextGridCNN,
    (Modality.TEXT, True): ToyNaiveBayes,
    (Modality.IMAGE_TEXT, False): ToyFusion,
}
_ORDER = (Modality.IMAGE, Modality.TEXT, Modality.IMAGE_TEXT)


def device() -> torch.device:
    """Return the device fixtures run on: ``$HARNESS_TEST_DEVICE`` or the CPU (CUDA: no TF32)."""
    from harness.device import resolve_device

    return resolve_device(os.environ.get("HARNESS_TEST_DEVICE", "cpu"), where="HARNESS_TEST_DEVICE")


def fixture_combos(
    modalities: Iterable[Modality], tasks: Iterable[Task]
) -> list[tuple[Modality, Task]]:
    """Return the (modality, task) pairs a fixture dataset exists for, preferred first."""
    mods, tks = set(modalities), set(tasks)
    return [
        (m, t) for m in _ORDER for t in (Task.MULTICLASS, Task.MULTILABEL)
        if m in mods and t in tks and (m, t) in DATASETS
    ]  # fmt: skip


def fixture_dataset(modality: Modality, task: Task) -> Dataset:
    """Return a fresh toy dataset of ``modality`` and ``task``."""
    if (modality, task) not in DATASETS:
        raise CapabilityError(
            f"harness.testing: no fixture dataset for {modality.value} / {task.value} - "
            f"expected one of {sorted((m.value, t.value) for m, t in DATASETS)}."
        )
    return DATASETS[modality, task]()


def fixture_batch(dataset: Dataset, rows: int = 4, split: str = "test") -> Batch:
    """Load the first ``rows`` samples of ``split``."""
    return dataset.load(list(dataset.splits()[split])[:rows])


def fixture_targets(batch: Batch, task: Task) -> Tensor:
    """One target per row: the class (multi-class) or the first positive finding (multi-label)."""
    if task is Task.MULTICLASS:
        return batch.labels.clone()
    return (batch.labels == 1).long().argmax(dim=1)


@functools.lru_cache(maxsize=16)
def _trained_state(
    model_cls: type[Model], modality: Modality, task: Task, permuted: bool = False
) -> dict[str, Tensor]:
    if model_cls is ToyBlackBoxCNN:  # the same network behind an opaque interface
        model_cls = ToyCNN
    dataset = fixture_dataset(modality, task)
    train = list(dataset.splits()["train"])
    if permuted:
        from harness.pipeline.randomisation import PermutedLabels

        dataset = PermutedLabels(base=dataset, ids=train, seed=1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1 if permuted else 0)
        model = model_cls()
        model.build(dataset.info())
        model.fit(dataset, train, FitContext(device=torch.device("cpu")))
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def fixture_model(
    modality: Modality,
    task: Task,
    *,
    black_box: bool = False,
    trained: bool = True,
    permuted: bool = False,
) -> Model:
    """Return a toy model for ``modality`` / ``task`` on :func:`device`, trained by default.

    ``black_box=True`` gives a model without gradients, module or layers
    (:class:`ToyBlackBoxCNN` for images, :class:`ToyNaiveBayes` for text).
    ``permuted=True`` trains it on permuted training labels (data randomisation).
    """
    key = (modality, black_box and (modality, True) in MODELS)
    model_cls = MODELS[key]
    if model_cls is ToyNaiveBayes and task is not Task.MULTICLASS:
        model_cls = MODELS[modality, False]
    model = model_cls()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model.build(fixture_dataset(modality, task).info())
    if trained:
        model.load_state_dict(_trained_state(model_cls, modality, task, permuted))
    return model.to(device())
