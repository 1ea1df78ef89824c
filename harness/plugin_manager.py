"""Build the pluggy manager and the four registries from entry points.

Order (pytest style): hookspecs, the core metrics as a default plugin, then
every ``harness`` entry point unless ``HARNESS_DISABLE_PLUGIN_AUTOLOAD`` is set
or the plugin is blocked with ``-p no:NAME``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pluggy

from harness import hookspecs
from harness.contracts import Dataset, Explainer, Metric, Model
from harness.registry import Registry

log = logging.getLogger(__name__)

GROUP = "harness"
CORE_PLUGIN = "harness.metrics"


@dataclass
class Registries:
    """The four registries, plus the manager that filled them."""

    manager: pluggy.PluginManager
    datasets: Registry[Dataset]
    models: Registry[Model]
    explainers: Registry[Explainer]
    metrics: Registry[Metric]

    def kind(self, kind: str) -> Registry[Any]:
        """Return the registry of ``kind`` (datasets, models, explainers, metrics)."""
        registries: dict[str, Registry[Any]] = {
            "datasets": self.datasets,
            "models": self.models,
            "explainers": self.explainers,
            "metrics": self.metrics,
        }
        return registries[kind]


def _dist_of(manager: pluggy.PluginManager, plugin: object) -> tuple[str, str]:
    for plug, dist in manager.list_plugin_distinfo():
        if plug is plugin:
            return dist.metadata["name"], dist.version
    if getattr(plugin, "__name__", "").startswith("harness."):
        from harness import __version__

        return "harness", __version__
    return getattr(plugin, "__name__", "?"), ""


def build_plugin_manager(blocked: Iterable[str] = ()) -> pluggy.PluginManager:
    """Return a manager with the hookspecs, the core plugin and entry-point plugins."""
    import importlib

    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    for name in blocked:
        pm.set_blocked(name)
    if not pm.is_blocked(CORE_PLUGIN):
        pm.register(importlib.import_module(CORE_PLUGIN), name=CORE_PLUGIN)
    if not os.environ.get("HARNESS_DISABLE_PLUGIN_AUTOLOAD"):
        pm.load_setuptools_entrypoints(GROUP)
    pm.check_pending()
    return pm


def discover(blocked: Iterable[str] = ()) -> Registries:
    """Discover every plugin and return frozen registries."""
    pm = build_plugin_manager(blocked)
    regs = Registries(
        manager=pm,
        datasets=Registry("datasets", Dataset),  # type: ignore[type-abstract]
        models=Registry("models", Model),  # type: ignore[type-abstract]
        explainers=Registry("explainers", Explainer),  # type: ignore[type-abstract]
        metrics=Registry("metrics", Metric),
    )
    hooks: dict[str, Any] = {
        "datasets": pm.hook.harness_datasets,
        "models": pm.hook.harness_models,
        "explainers": pm.hook.harness_explainers,
        "metrics": pm.hook.harness_metrics,
    }
    for kind, hook in hooks.items():
        registry = regs.kind(kind)
        for impl in reversed(hook.get_hookimpls()):
            dist, version = _dist_of(pm, impl.plugin)
            for name, target in (impl.function() or {}).items():
                registry.add(name, target, dist, version)
        registry.freeze()
    return regs


_CACHE: dict[tuple[str, ...], Registries] = {}


def get_registries(blocked: Iterable[str] = ()) -> Registries:
    """Return the (cached) registries for this process."""
    key = tuple(sorted(blocked))
    if key not in _CACHE:
        _CACHE[key] = discover(key)
    return _CACHE[key]


def registered_distribution(kind: str, name: str) -> str:
    """Return "dist version" of the plugin registered as ``name`` in this process, or ''."""
    for regs in _CACHE.values():
        registry = regs.kind(kind)
        if name in registry:
            entry = registry.entry(name)
            return f"{entry.distribution} {entry.dist_version}".strip()
    return ""


def installed_distributions() -> dict[str, str]:
    """Return name -> version of every distribution exposing a ``harness`` entry point."""
    out = {}
    for ep in metadata.entry_points(group=GROUP):
        if ep.dist is not None:
            out[ep.dist.metadata["name"]] = ep.dist.version
    return out
