"""Checks of metric parameters shared by every metric family, with the house error messages."""

from __future__ import annotations

import math

from harness.errors import PluginError

__all__ = ["choice", "positive", "positive_number"]


def choice(metric: str, param: str, value: object, allowed: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise a PluginError."""
    if value not in allowed:
        raise PluginError(
            f"metric {metric!r}: parameter {param}={value!r} - expected one of "
            f"{', '.join(map(repr, allowed))}, got {value!r}.",
            plugin=metric,
        )
    return str(value)


def positive(metric: str, param: str, value: object) -> int:
    """Return ``value`` as an int if it is a positive integer, else raise a PluginError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PluginError(
            f"metric {metric!r}: parameter {param}={value!r} - expected a positive integer, "
            f"got {value!r}.",
            plugin=metric,
        )
    return value


def positive_number(metric: str, param: str, value: object) -> float:
    """Return ``value`` as a float if it is a finite number above 0, else raise a PluginError."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise PluginError(
            f"metric {metric!r}: parameter {param}={value!r} - expected a positive number, "
            f"got {value!r}.",
            plugin=metric,
        )
    return float(value)
