"""Checks of metric parameters shared by every metric family, with the house error messages.

Every message reads ``metric 'NAME': parameter P=V - expected X, got V.``; a
metric's ``check_params`` calls these, so a refused value is named before any
data is loaded or any model runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from numbers import Real

from harness.errors import PluginError

__all__ = [
    "choice",
    "flag",
    "integer",
    "number_in",
    "optional_positive",
    "percentages",
    "positive",
    "positive_number",
]


def refuse(metric: str, param: str, value: object, expected: str) -> PluginError:
    """Return the house PluginError for ``param=value`` (the caller raises it)."""
    return PluginError(
        f"metric {metric!r}: parameter {param}={value!r} - expected {expected}, got {value!r}.",
        plugin=metric,
    )


def choice(metric: str, param: str, value: object, allowed: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise a PluginError."""
    if value not in allowed:
        raise refuse(metric, param, value, f"one of {', '.join(map(repr, allowed))}")
    return str(value)


def integer(metric: str, param: str, value: object, *, minimum: int | None = None) -> int:
    """Return ``value`` if it is an int (not a bool) and at least ``minimum``, else raise."""
    if isinstance(value, bool) or not isinstance(value, int):
        expected = "an integer" if minimum is None else f"an integer >= {minimum}"
        raise refuse(metric, param, value, expected)
    if minimum is not None and value < minimum:
        raise refuse(metric, param, value, f"an integer >= {minimum}")
    return value


def positive(metric: str, param: str, value: object) -> int:
    """Return ``value`` as an int if it is a positive integer, else raise a PluginError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise refuse(metric, param, value, "a positive integer")
    return value


def optional_positive(metric: str, param: str, value: object) -> int | None:
    """Return ``value`` if it is None or a positive integer, else raise a PluginError."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise refuse(metric, param, value, "None or a positive integer")
    return value


def positive_number(metric: str, param: str, value: object) -> float:
    """Return ``value`` as a float if it is a finite number above 0, else raise a PluginError."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise refuse(metric, param, value, "a positive number")
    return float(value)


def number_in(
    metric: str, param: str, value: object, interval: str, low: float, high: float
) -> float:
    """Return ``value`` as a float if it lies in ``interval`` (e.g. "[0, 1)"), else raise.

    ``interval`` names the bounds ``low`` and ``high`` and whether each is
    included (``[``/``]``) or excluded (``(``/``)``); ``math.inf`` is never
    included.
    """
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok:
        x = float(value)  # type: ignore[arg-type]
        ok = math.isfinite(x) and _inside(x, interval, low, high)
    if not ok:
        raise refuse(metric, param, value, f"a number in {interval}")
    return float(value)  # type: ignore[arg-type]


def flag(metric: str, param: str, value: object) -> bool:
    """Return ``value`` if it is a bool (a string such as "false" would be true), else raise."""
    if not isinstance(value, bool):
        raise refuse(metric, param, value, "True or False")
    return value


def percentages(
    metric: str, param: str, value: object, interval: str, low: float, high: float, what: str
) -> list[Fraction]:
    """Return a non-empty sequence of numbers in ``interval`` as exact fractions, else raise.

    Fractions of the decimal text keep ``7`` percent exactly 7 (``0.07 * 100``
    is not); ``interval`` reads as in :func:`number_in`; the message expects
    "a non-empty list of ``what`` in ``interval``".
    """
    text = isinstance(value, str | bytes)
    items = list(value) if isinstance(value, Sequence) and not text else []
    ok = bool(items) and all(
        isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(v) for v in items
    )
    values = [Fraction(str(v)) for v in items] if ok else []
    if not ok or not all(_inside(v, interval, low, high) for v in values):
        raise refuse(metric, param, value, f"a non-empty list of {what} in {interval}")
    return values


def _inside(x: float | Fraction, interval: str, low: float, high: float) -> bool:
    """Whether finite ``x`` lies in ``interval`` between ``low`` and ``high``."""
    above = x >= low if interval[0] == "[" else x > low
    below = x <= high if interval[-1] == "]" else x < high
    return above and below
