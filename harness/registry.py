"""Registries of plugin classes by public name, filled from pluggy hooks.

A name maps to a class or to a lazy ``"module:attr"`` target that is imported
on first use. A name claimed by two plugins raises :class:`PluginConflictError`
naming both (distribution and entry point) when it is used, so the other names
stay usable; unknown names get the closest valid names.
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
    plugin: str = ""  # the pluggy plugin (entry-point name) that registered it

    def origin(self) -> str:
        """Return "distribution version (entry point NAME)" for messages."""
        where = f"{self.distribution} {self.dist_version}".strip()
        return f"{where} (entry point {self.plugin!r})" if self.plugin else where


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
        self._conflicts: dict[str, list[Entry]] = {}
        self._loaded: dict[str, type[T]] = {}
        self._frozen = False

    def add(
        self, name: str, target: str | type, distribution: str, dist_version: str, plugin: str = ""
    ) -> None:
        """Register ``name``; a second plugin claiming it makes the name a conflict.

        The conflict is raised by :meth:`entry` (every use of the name), not
        here, so an ambiguous name does not stop commands that never use it.
        """
        if self._frozen:
            raise PluginError(f"{self.kind} registry is frozen; cannot add {name!r}", plugin=name)
        entry = Entry(name, target, distribution, dist_version, plugin)
        if name in self._entries:
            self._conflicts.setdefault(name, [self._entries[name]]).append(entry)
            return
        self._entries[name] = entry

    def conflict(self, name: str) -> PluginConflictError | None:
        """Return the error for a name registered more than once, else None."""
        claims = self._conflicts.get(name)
        if not claims:
            return None
        blocks = " or ".join(f"-p no:{c.plugin}" for c in claims if c.plugin)
        fix = f"uninstall one or block it with {blocks}" if blocks else "uninstall one"
        return PluginConflictError(
            f"{self.kind[:-1]} {name!r} is registered by both "
            f"{' and '.join(c.origin() for c in claims)}; {fix}",
            plugin=name,
        )

    def freeze(self) -> None:
        """Forbid further registrations."""
        self._frozen = True

    def names(self) -> list[str]:
        """Return the registered names, sorted."""
        return sorted(self._entries)

    def entry(self, name: str) -> Entry:
        """Return the entry of ``name``; raise with suggestions if unknown, or if two claim it."""
        conflict = self.conflict(name)
        if conflict is not None:
            raise conflict
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
            except Exception as exc:  # noqa: BLE001 - any import-time error (SyntaxError too)
                raise PluginError(
                    f"{self.kind[:-1]} {name!r} ({entry.distribution}): cannot load {entry.target!r}: {type(exc).__name__}: {exc}",
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
