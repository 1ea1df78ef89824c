"""Build the pluggy manager and the four registries from entry points.

Order (pytest style): hookspecs, the core metrics as a default plugin, then
every ``harness`` entry point unless ``HARNESS_DISABLE_PLUGIN_AUTOLOAD`` is set
or the plugin is blocked with ``-p no:NAME``. A plugin that cannot be imported or
registered, or whose hook raises, is left out with one warning naming its
entry point and distribution; the other plugins stay usable.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
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
_HOOKS = ", ".join(sorted(n for n in dir(hookspecs) if n.startswith("harness_")))


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
    for plug, dist in _DISTRIBUTIONS.get(id(manager), ()):
        if plug is plugin:
            return dist.metadata["name"], dist.version
    if getattr(plugin, "__name__", "").startswith("harness."):
        from harness import __version__

        return "harness", __version__
    return getattr(plugin, "__name__", "?"), ""


#: (plugin, distribution) pairs of the entry-point plugins, per manager
_DISTRIBUTIONS: dict[int, list[tuple[object, metadata.Distribution]]] = {}


def _skip_broken(name: str, dist: metadata.Distribution, exc: Exception) -> None:
    log.warning(
        "plugin %r (%s %s) is left out: %s: %s - fix or uninstall it, or block it with -p no:%s",
        name,
        dist.metadata["name"],
        dist.version,
        type(exc).__name__,
        exc,
        name,
    )


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    """Register every ``harness`` entry point not blocked; a broken one is skipped with a warning.

    (pluggy's ``load_setuptools_entrypoints`` stops at the first plugin that
    fails to import, taking every command down with it.)
    """
    loaded = _DISTRIBUTIONS.setdefault(id(pm), [])
    for dist in list(metadata.distributions()):
        for ep in dist.entry_points:
            if ep.group != GROUP or pm.get_plugin(ep.name) or pm.is_blocked(ep.name):
                continue
            try:
                plugin = ep.load()
                pm.register(plugin, name=ep.name)
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop the others
                _skip_broken(ep.name, dist, exc)
                if pm.get_plugin(ep.name) is not None:  # pluggy keeps the hooks it added first
                    pm.unregister(name=ep.name)
                continue
            loaded.append((plugin, dist))
    _drop_unknown_hooks(pm, loaded)


def _drop_unknown_hooks(
    pm: pluggy.PluginManager, loaded: list[tuple[object, metadata.Distribution]]
) -> None:
    """Leave out the plugins implementing a hook no spec declares (a misspelt hook name)."""
    for name in dir(pm.hook):
        caller = getattr(pm.hook, name)
        if name.startswith("_") or not isinstance(caller, pluggy.HookCaller) or caller.has_spec():
            continue
        for impl in caller.get_hookimpls():
            if impl.optionalhook or pm.get_name(impl.plugin) is None:
                continue
            dist = next((d for p, d in loaded if p is impl.plugin), None)
            error = pluggy.PluginValidationError(
                impl.plugin, f"unknown hook {name!r} (the harness declares {_HOOKS})"
            )
            if dist is not None:
                _skip_broken(impl.plugin_name, dist, error)
            loaded[:] = [(p, d) for p, d in loaded if p is not impl.plugin]
            pm.unregister(impl.plugin)


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
        _load_entry_points(pm)
    pm.check_pending()
    return pm


def _empty_registries(pm: pluggy.PluginManager) -> Registries:
    return Registries(
        manager=pm,
        datasets=Registry("datasets", Dataset),  # type: ignore[type-abstract]
        models=Registry("models", Model),  # type: ignore[type-abstract]
        explainers=Registry("explainers", Explainer),  # type: ignore[type-abstract]
        metrics=Registry("metrics", Metric),
    )


def registries_with(
    plugins: Mapping[str, Iterable[type]], *, distribution: str = "in-process", version: str = ""
) -> Registries:
    """Return registries holding only ``plugins`` (kind -> classes), without entry points.

    For plugins defined in a test or a notebook: ``run_benchmark(options,
    registries_with({"models": [MyModel], ...}))`` runs them with the local
    executor. The classes are registered under their ``name`` as supplied by
    ``distribution``; the manager has the hook specifications and no plugin.
    """
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    regs = _empty_registries(pm)
    for kind, classes in plugins.items():
        for cls in classes:
            regs.kind(kind).add(cls.name, cls, distribution, version)  # type: ignore[attr-defined]
    return regs


def discover(blocked: Iterable[str] = ()) -> Registries:
    """Discover every plugin and return frozen registries."""
    pm = build_plugin_manager(blocked)
    regs = _empty_registries(pm)
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
            try:
                provided = dict(impl.function() or {})
            except Exception as exc:  # noqa: BLE001 - one plugin's hook must not stop the others
                log.warning(
                    "plugin %r (%s %s): its harness_%s hook raised %s: %s; its %s are left out "
                    "- fix or uninstall it, or block it with -p no:%s",
                    impl.plugin_name, dist, version, kind, type(exc).__name__, exc, kind,
                    impl.plugin_name,
                )  # fmt: skip
                continue
            for name, target in provided.items():
                registry.add(name, target, dist, version, plugin=impl.plugin_name)
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
        if name in registry and registry.conflict(name) is None:
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
