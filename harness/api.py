"""Python API: any registered plugin by name, without a spec.

Examples
--------
>>> import harness
>>> metric = harness.get_metric("localisation.pointing_game")
>>> metric.higher_is_better
True
"""

from __future__ import annotations

from typing import Any

from harness.contracts import Dataset, Explainer, Metric, Model
from harness.errors import PluginError
from harness.plugin_manager import get_registries


def _make(kind: str, name: str, params: dict[str, Any]) -> Any:
    cls = get_registries().kind(kind).get(name)
    unknown = sorted(set(params) - set(cls.param_names()))
    if unknown:
        raise PluginError(
            f"{kind.removesuffix('s')} {name!r}: unknown parameter(s) {unknown}; expected some "
            f"of {sorted(cls.param_names())} (harness describe {name})",
            plugin=name,
        )
    return cls(**params)


def get_dataset(name: str, **params: Any) -> Dataset:
    """Return the dataset registered as ``name``, built with ``params``."""
    out: Dataset = _make("datasets", name, params)
    return out


def get_model(name: str, **params: Any) -> Model:
    """Return the model registered as ``name``, built with ``params``."""
    out: Model = _make("models", name, params)
    return out


def get_explainer(name: str, **params: Any) -> Explainer:
    """Return the explainer registered as ``name``, built with ``params``."""
    out: Explainer = _make("explainers", name, params)
    return out


def get_metric(name: str, **params: Any) -> Metric:
    """Return the metric registered as ``name``, built with ``params``."""
    out: Metric = _make("metrics", name, params)
    return out


def list_plugins(kind: str) -> list[str]:
    """Return the registered names of ``kind`` (datasets, models, explainers, metrics)."""
    return get_registries().kind(kind).names()


def clear_metric_cache() -> None:
    """Forget the metric engine's stored forward passes and results (and free device memory).

    Metrics reuse forward passes across calls on the same model and inputs;
    the key covers the model's parameters, buffers, submodules, modes and
    forward hooks. Call this after changing anything else a ``forward``
    reads (e.g. a plain attribute such as a temperature).
    """
    from harness.metrics._engine import cache_clear

    cache_clear()
