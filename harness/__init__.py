"""Benchmark harness for explainable AI in medicine.

The public API: the plugin contracts, the hook markers, and lookup of any
registered plugin by name.
"""

from __future__ import annotations

__version__ = "0.1.0"

from harness.api import get_dataset, get_explainer, get_metric, get_model, list_plugins
from harness.contracts import (
    Attribution,
    Batch,
    ClassificationMetric,
    Dataset,
    DatasetInfo,
    DatasetTags,
    Explainer,
    ExplainerTags,
    ExplanationMetric,
    FitContext,
    GenerationMetric,
    Metric,
    MetricKind,
    MetricTags,
    Modality,
    Model,
    ModelTags,
    Need,
    Output,
    Provides,
    Sample,
    Scores,
    Task,
    TorchModel,
)
from harness.errors import (
    CapabilityError,
    ContractViolation,
    DataError,
    HarnessError,
    PluginConflictError,
    PluginError,
    SpecError,
    StoreError,
)
from harness.hookspecs import hookimpl

__all__ = [
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
    "get_dataset",
    "get_explainer",
    "get_metric",
    "get_model",
    "hookimpl",
    "list_plugins",
]
