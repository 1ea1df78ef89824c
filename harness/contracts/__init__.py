"""The plugin contracts: tags, data carriers and one base class per plugin kind."""

from harness.contracts.component import Component, canonical_json, sha256_of
from harness.contracts.data import MISSING, UNCERTAIN, Attribution, Batch, DatasetInfo, Sample
from harness.contracts.dataset import SPLITS, Dataset
from harness.contracts.explainer import Explainer
from harness.contracts.metric import (
    ClassificationMetric,
    ExplanationMetric,
    GenerationMetric,
    Metric,
    Scores,
)
from harness.contracts.model import (
    FitContext,
    Model,
    SupportsRandomisation,
    SupportsTargetLayer,
    SupportsTorchModule,
    TorchModel,
)
from harness.contracts.tags import (
    DatasetTags,
    ExplainerTags,
    MetricKind,
    MetricTags,
    Modality,
    ModelTags,
    Need,
    Output,
    Provides,
    Task,
)

__all__ = [
    "MISSING",
    "SPLITS",
    "UNCERTAIN",
    "Attribution",
    "Batch",
    "ClassificationMetric",
    "Component",
    "Dataset",
    "DatasetInfo",
    "DatasetTags",
    "Explainer",
    "ExplainerTags",
    "ExplanationMetric",
    "FitContext",
    "GenerationMetric",
    "Metric",
    "MetricKind",
    "MetricTags",
    "Modality",
    "Model",
    "ModelTags",
    "Need",
    "Output",
    "Provides",
    "Sample",
    "Scores",
    "SupportsRandomisation",
    "SupportsTargetLayer",
    "SupportsTorchModule",
    "Task",
    "TorchModel",
    "canonical_json",
    "sha256_of",
]
