"""Registries of plugin classes by public name, filled from pluggy hooks.

A name maps to a class or to a lazy ``"module:attr"`` target that is imported
on first use. Duplicate names raise :class:`PluginConflictError` naming both
distributions; unknown names get the closest valid names.
"""

from __future__ import annotations

import functools
import importlib
import sys
from dataclasses import dataclass
from importlib import metadata
from typing import Generic, TypeVar

from harness.errors import PluginConflictError, PluginError, did_you_mean

T = TypeVar("T")


@dataclass(frozen=True)
class Entry:
    """One registered name: its lazy target and the distribution that supplied it."""

    name: str
    target: str | type
    distribution: str
    dist_version: str


@functools.lru_cache(maxsize=256)
def distribution_of(obj: type) -> str:
    """Return ``"dist version"`` of the distribution holding ``obj``'s module, or ''."""
    top = obj.__module__.split(".")[0]
    dists = metadata.packages_distributions().get(top, [])
    if not dists:
        return ""
    try:
        return f"{dists[0]} {metadata.version(dists[0])}"
    except metadata.PackageNotFoundError:
        return dists[0]


class Registry(Generic[T]):
    """Name -> plugin class for one plugin kind (datasets, models, ...)."""

    def __init__(self, kind: str, base: type[T]) -> None:
        self.kind = kind
        self.base = base
        self._entries: dict[str, Entry] = {}
        self._loaded: dict[str, type[T]] = {}
        self._frozen = False

    def add(self, name: str, target: str | type, distribution: str, dist_version: str) -> None:
        """Register ``name``; a second distribution claiming it is a conflict."""
        if self._frozen:
            raise PluginError(f"{self.kind} registry is frozen; cannot add {name!r}", plugin=name)
        if name in self._entries:
            other = self._entries[name]
            raise PluginConflictError(
                f"{self.kind[:-1]} {name!r} is registered by both {other.distribution} "
                f"{other.dist_version} and {distribution} {dist_version}; uninstall one or "
                f"block it with -p no:<plugin>",
                plugin=name,
            )
        self._entries[name] = Entry(name, target, distribution, dist_version)

    def freeze(self) -> None:
        """Forbid further registrations."""
        self._frozen = True

    def names(self) -> list[str]:
        """Return the registered names, sorted."""
        return sorted(self._entries)

    def entry(self, name: str) -> Entry:
        """Return the entry of ``name`` or raise with suggestions."""
        if name not in self._entries:
            raise PluginError(
                f"unknown {self.kind[:-1]} {name!r}.{did_you_mean(name, self._entries)}",
                plugin=name,
            )
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def get(self, name: str) -> type[T]:
        """Import (once) and return the class registered as ``name``."""
        if name in self._loaded:
            return self._loaded[name]
        entry = self.entry(name)
        target = entry.target
        if isinstance(target, str):
            module_name, _, attr = target.partition(":")
            try:
                module = sys.modules.get(module_name) or importlib.import_module(module_name)
                target = getattr(module, attr)
            except (ImportError, AttributeError) as exc:
                raise PluginError(
                    f"{self.kind[:-1]} {name!r} ({entry.distribution}): cannot load {entry.target!r}: {exc}",
                    plugin=name,
                ) from exc
        if not (isinstance(target, type) and issubclass(target, self.base)):
            raise PluginError(
                f"{self.kind[:-1]} {name!r} ({entry.distribution}) resolves to {target!r}; "
                f"expected a subclass of {self.base.__name__}",
                plugin=name,
            )
        declared = getattr(target, "name", "")
        if not declared:
            target.name = name  # type: ignore[attr-defined]
        elif declared != name:
            raise PluginError(
                f"{self.kind[:-1]} {name!r} ({entry.distribution}) resolves to a class named "
                f"{declared!r}; expected the registered name {name!r}",
                plugin=name,
            )
        self._loaded[name] = target
        return target
