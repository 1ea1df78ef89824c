"""Benchmark harness for explainable AI in medicine.

The public API: the plugin contracts, the hook markers, and lookup of any
registered plugin by name. Attributes load lazily, so ``harness --help`` and
plugin discovery never import torch, Captum or Zennit.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from harness.api import (
        clear_metric_cache,
        get_dataset,
        get_explainer,
        get_metric,
        get_model,
        list_plugins,
    )
    from harness.arrays import score
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
    "clear_metric_cache",
    "get_dataset",
    "get_explainer",
    "get_metric",
    "get_model",
    "hookimpl",
    "list_plugins",
    "score",
]

_SOURCES = {
    "harness.api": (
        "clear_metric_cache",
        "get_dataset",
        "get_explainer",
        "get_metric",
        "get_model",
        "list_plugins",
    ),
    "harness.arrays": ("score",),
    "harness.errors": (
        "CapabilityError",
        "ContractViolation",
        "DataError",
        "HarnessError",
        "PluginConflictError",
        "PluginError",
        "SpecError",
        "StoreError",
    ),
    "harness.hookspecs": ("hookimpl",),
}
_ORIGIN = {name: module for module, names in _SOURCES.items() for name in names}


def __getattr__(name: str) -> Any:
    if name in _ORIGIN or name in __all__:
        module = importlib.import_module(_ORIGIN.get(name, "harness.contracts"))
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'harness' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
