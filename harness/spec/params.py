"""Check spec parameter values against a plugin constructor's annotations.

A YAML value fits an annotation when YAML could have built it: ``int`` for a
``float``, a list for a ``Sequence``, a string for a ``Path``, any member of a
union. Types YAML cannot hold (callables, tensors) are left to the plugin.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import Any

__all__ = ["describe_hint", "init_hints", "matches"]


def init_hints(cls: type) -> dict[str, Any]:
    """Return the resolved ``__init__`` annotations of ``cls`` ({} when they cannot be resolved)."""
    try:
        return typing.get_type_hints(cls.__init__)  # type: ignore[misc]
    except (NameError, TypeError, AttributeError):
        return {}


def matches(value: Any, hint: Any) -> bool:
    """Whether a YAML ``value`` fits the annotation ``hint`` (lenient for types YAML cannot hold)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or isinstance(hint, typing.TypeVar):
        return True
    if hint is None or hint is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, a) for a in args)
    if origin is typing.Literal:
        return value in args
    if origin is typing.Annotated:
        return matches(value, args[0])
    if origin in (list, tuple, set, frozenset, Sequence, typing.Sequence):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(
                matches(v, a) for v, a in zip(value, args, strict=True)
            )
        return not args or all(matches(v, args[0]) for v in value)
    if origin in (dict, Mapping, typing.Mapping):
        if not isinstance(value, dict):
            return False
        if len(args) == 2:
            return all(matches(k, args[0]) and matches(v, args[1]) for k, v in value.items())
        return True
    if origin is not None or not isinstance(hint, type):
        return True
    if hint is bool:
        return isinstance(value, bool)
    if hint in (int, float):
        number = (int,) if hint is int else (int, float)
        return isinstance(value, number) and not isinstance(value, bool)
    if hint in (str, list, tuple, dict):
        return isinstance(value, (list, tuple) if hint in (list, tuple) else hint)
    if issubclass(hint, PurePath):
        return isinstance(value, (str, PurePath))
    return True  # a class YAML cannot build (a callable, a tensor): left to the plugin


def describe_hint(hint: Any) -> str:
    """Render an annotation the way it reads in source: ``str | float``, ``list[int]``."""
    if isinstance(hint, type) and not typing.get_args(hint):
        return "None" if hint is type(None) else hint.__name__
    return (
        str(hint).replace("typing.", "").replace("collections.abc.", "").replace("NoneType", "None")
    )
