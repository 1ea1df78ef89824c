"""Exception hierarchy of the harness.

::

    HarnessError
      SpecError              file, key path, line; unknown names get suggestions
      PluginError            .plugin name + distribution
        PluginConflictError  same public name from two distributions
        CapabilityError      the model/dataset lacks what the plugin needs -> skipped cell
        ContractViolation    the plugin returned bad output (shape, NaN, device) -> failed cell
      DataError              a dataset file, row or value is not what was expected
      StoreError             the results store cannot be read or written

Messages follow ``<where>: <what> - expected <x>, got <y>. <how to fix>``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def suggest(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """Return up to ``n`` names from ``choices`` closest to ``name``."""
    return difflib.get_close_matches(name, sorted(set(choices)), n=n, cutoff=0.5)


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Render the "Did you mean ... Available: ..." tail of an error message."""
    pool = sorted(set(choices))
    close = suggest(name, pool)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    shown = ", ".join(pool[:12]) + (", ..." if len(pool) > 12 else "")
    return f"{hint} Available: {shown} ({len(pool)} total)."


class HarnessError(Exception):
    """Base class of every error the harness raises on purpose."""


class SpecError(HarnessError):
    """A benchmark spec is invalid; names the file, the key path and what was expected."""

    def __init__(
        self,
        file: str,
        key_path: str,
        message: str,
        *,
        line: int | None = None,
        suggestions: list[str] | None = None,
    ) -> None:
        self.file = file
        self.key_path = key_path
        self.line = line
        self.suggestions = suggestions or []
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {key_path}: {message}" if key_path else f"{where}: {message}")


class PluginError(HarnessError):
    """A plugin failed or misbehaved; ``plugin`` names it."""

    def __init__(self, message: str, *, plugin: str | None = None) -> None:
        self.plugin = plugin
        super().__init__(message)


class PluginConflictError(PluginError):
    """Two distributions registered the same public name."""


class CapabilityError(PluginError):
    """A plugin needs something the dataset, model or explainer does not provide."""


class ContractViolation(PluginError):
    """A plugin returned output that breaks its contract (shape, NaN, device, type)."""


class DataError(HarnessError):
    """A dataset file, row or value is missing or malformed."""


class StoreError(HarnessError):
    """The results store cannot be opened, read or written."""
