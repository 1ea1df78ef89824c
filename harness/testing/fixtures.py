"""Tiny CPU fixtures that exercise every contract shape, for the kit and for plugin tests.

======================================================  =======================
Shape                                                    Toy
======================================================  =======================
image, multi-class, masks, reference sentences           :class:`ToyLesions`
image, multi-label states 1 / 0 / -1 / -2, masks         :class:`ToyChestXray`
text, 625 token ids (25 x 25 grid), token rationales     :class:`ToyAbstracts`
text, multi-label reports, token rationales              :class:`ToyReports`
image + text (images, tokens, texts), masks, rationales  :class:`ToyImageReport`
CNN with a conv target layer                             :class:`ToyCNN`
text-as-image CNN whose CAM maps read back to tokens     :class:`ToyTextGridCNN`
image + text late fusion, sigmoid multi-label head       :class:`ToyFusion`
black-box scikit-learn Naive Bayes, state as tensors     :class:`ToyNaiveBayes`
black-box image CNN (no module, no gradients)            :class:`ToyBlackBoxCNN`
Grad-CAM (pixels, or tokens of a text grid)              :class:`ToyGradCAM`
input x gradient (per-channel pixels)                    :class:`ToyInputXGradient`
token occlusion (model-agnostic)                         :class:`ToyTokenOcclusion`
generated sentence + attention map                       :class:`ToyAttentionSentence`
======================================================  =======================

Fixture models are trained once per process (a fraction of a second each)
inside a forked RNG, so using them never disturbs the caller's random state.
``HARNESS_TEST_DEVICE`` (default ``cpu``) chooses the device they run on.

Examples
--------
>>> from harness import Modality, Task
>>> from harness.testing import fixtures
>>> data = fixtures.fixture_dataset(Modality.IMAGE, Task.MULTICLASS)
>>> batch = fixtures.fixture_batch(data)
>>> model = fixtures.fixture_model(Modality.IMAGE, Task.MULTICLASS)
>>> tuple(model.logits(batch).shape)
(4, 2)
>>> fixtures.ToyGradCAM().explain(model, batch, batch.labels).pixels.shape
torch.Size([4, 32, 32])
"""

from __future__ import annotations

from harness.contracts import Component
from harness.testing._select import (
    DATASETS,
    MODELS,
    device,
    fixture_batch,
    fixture_combos,
    fixture_dataset,
    fixture_model,
    fixture_targets,
)
from harness.testing._setups import (
    ClassificationInputs,
    ExplainerSetup,
    GenerationInputs,
    MetricSetup,
    classification_inputs,
    explainer_setup,
    generation_inputs,
    metric_setup,
)
from harness.testing._toy_abstracts import ToyAbstracts
from harness.testing._toy_attribution import ToyInputXGradient, ToyTokenOcclusion
from harness.testing._toy_black_box import ToyBlackBoxCNN, ToyNaiveBayes
from harness.testing._toy_cam import ToyAttentionSentence, ToyGradCAM, tokens_from_grid
from harness.testing._toy_images import ToyChestXray, ToyLesions
from harness.testing._toy_models import ToyCNN, ToyFusion, ToyTextGridCNN
from harness.testing._toy_reports import ToyImageReport, ToyReports


def toy_plugins() -> list[Component]:
    """Return one default instance of every toy dataset, model and explainer."""
    classes: list[type[Component]] = [
        *DATASETS.values(),
        *MODELS.values(),
        ToyGradCAM,
        ToyInputXGradient,
        ToyTokenOcclusion,
        ToyAttentionSentence,
    ]
    return [cls() for cls in classes]


__all__ = [
    "ClassificationInputs",
    "ExplainerSetup",
    "GenerationInputs",
    "MetricSetup",
    "ToyAbstracts",
    "ToyAttentionSentence",
    "ToyBlackBoxCNN",
    "ToyCNN",
    "ToyChestXray",
    "ToyFusion",
    "ToyGradCAM",
    "ToyImageReport",
    "ToyInputXGradient",
    "ToyLesions",
    "ToyNaiveBayes",
    "ToyReports",
    "ToyTextGridCNN",
    "ToyTokenOcclusion",
    "classification_inputs",
    "device",
    "explainer_setup",
    "fixture_batch",
    "fixture_combos",
    "fixture_dataset",
    "fixture_model",
    "fixture_targets",
    "generation_inputs",
    "metric_setup",
    "tokens_from_grid",
    "toy_plugins",
]
