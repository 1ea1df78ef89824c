"""Checks shared by every plugin kind, and the plumbing every check uses.

A check is a plain function ``check_<what>(plugin) -> None`` that raises
:class:`~harness.errors.ContractViolation` with a message naming the plugin,
the check, what was expected and what came. Checks never mutate the plugin
they are given: they work on ``plugin.clone()`` or on fresh fixtures.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import math
import os
import pathlib
import re
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

import torch
from torch import Tensor

from harness.contracts import (
    Component,
    Dataset,
    DatasetTags,
    Explainer,
    ExplainerTags,
    Metric,
    MetricTags,
    Model,
    ModelTags,
)
from harness.errors import ContractViolation

Check = Callable[[Component], None]
"""A conformance check: takes a plugin instance, raises ContractViolation on failure."""

KINDS: dict[str, tuple[type[Component], type[Any]]] = {
    "dataset": (Dataset, DatasetTags),
    "model": (Model, ModelTags),
    "explainer": (Explainer, ExplainerTags),
    "metric": (Metric, MetricTags),
}
_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check on one plugin instance.

    ``plugin`` is the instance's repr, ``name`` the check's name. ``status``
    is ``"passed"``, ``"failed"``, ``"xfailed"`` (failed as expected) or
    ``"xpassed"`` (expected to fail but passed); ``message`` says why.
    """

    plugin: str
    name: str
    status: str
    message: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """True unless the check failed unexpectedly."""
        return self.status != "failed"


def kind_of(plugin: object) -> str:
    """Return ``"dataset"``, ``"model"``, ``"explainer"`` or ``"metric"``."""
    for kind, (base, _) in KINDS.items():
        if isinstance(plugin, base):
            return kind
    raise TypeError(
        f"harness.testing: {plugin!r} is not a plugin instance - expected an instance of "
        f"Dataset, Model, Explainer or Metric, got {type(plugin).__name__}."
    )


def describe(plugin: Component) -> str:
    """Name a plugin as error messages do: ``explainer 'x' (dist version)``."""
    from harness.plugin_manager import registered_distribution
    from harness.registry import distribution_of

    kind = kind_of(plugin)
    name = getattr(plugin, "name", "") or type(plugin).__qualname__
    cls: Any = type(plugin)
    dist = registered_distribution(f"{kind}s", name) or distribution_of(cls)
    return f"{kind} {name!r}" + (f" ({dist})" if dist else "")


def fail(plugin: Component, check: str, what: str, expected: object, got: object) -> NoReturn:
    """Raise ContractViolation: ``<who>: <check>: <what> - expected <x>, got <y>.``."""
    raise ContractViolation(
        f"{describe(plugin)}: {check}: {what} - expected {expected}, got {got}.",
        plugin=getattr(plugin, "name", None),
    )


def shape(t: Tensor | None) -> tuple[int, ...] | None:
    """Return the shape of ``t`` as a plain tuple (None stays None)."""
    return None if t is None else tuple(t.shape)


def close(a: Tensor, b: Tensor, *, rtol: float = 1e-4, atol: float = 1e-6) -> bool:
    """Compare two tensors; ``atol`` is relative to the larger magnitude of the two."""
    if a.shape != b.shape:
        return False
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    scale = float(max(a.abs().max(), b.abs().max())) if a.numel() else 0.0
    return bool(torch.allclose(a, b, rtol=rtol, atol=atol * scale, equal_nan=True))


def _changed(value: Any) -> Any:
    """Return a value of the same kind that differs from ``value``."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, enum.Enum):
        others = [m for m in type(value) if m is not value]
        return others[0] if others else f"{value.value}_changed"
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 2.0 + 1.0 if math.isfinite(value) else 0.5
    if isinstance(value, str):
        return value + "_changed"
    if isinstance(value, os.PathLike):
        return pathlib.Path(os.fspath(value) + "_changed")
    if isinstance(value, list | tuple):
        return type(value)([*value, 0])
    if isinstance(value, dict):
        return {**value, "_changed": 1}
    return 1 if value is None else None


def _json_like(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | str | enum.Enum | os.PathLike):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list | tuple):
        return all(_json_like(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_like(v) for k, v in value.items())
    return False


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return isinstance(a, Tensor) and isinstance(b, Tensor) and torch.equal(a, b)
    try:
        return bool(a == b)
    except (TypeError, ValueError, RuntimeError):
        return a is b


def check_init_signature(plugin: Component) -> None:
    """``__init__`` takes keyword-only parameters, no ``*args`` / ``**kwargs``."""
    init = type(plugin).__init__
    if init is object.__init__:
        return
    for p in list(inspect.signature(init).parameters.values())[1:]:
        if p.kind is not p.KEYWORD_ONLY:
            fail(
                plugin,
                "check_init_signature",
                f"__init__ parameter {p.name!r}",
                "keyword-only parameters (def __init__(self, *, ...))",
                p.kind.description,
            )


def check_init_stores_params(plugin: Component) -> None:
    """``__init__`` stores each argument unchanged under its own name and does nothing else."""
    params = plugin.get_params()
    fresh = type(plugin)(**params)
    for key, value in params.items():
        if getattr(fresh, key, _MISSING) is not value:
            fail(
                plugin,
                "check_init_stores_params",
                f"attribute {key!r} after __init__",
                "the argument object itself (no conversion in __init__)",
                repr(getattr(fresh, key, None)),
            )
    extra = sorted(k for k in vars(fresh) if k not in params and not k.startswith("_"))
    if extra:
        fail(
            plugin,
            "check_init_stores_params",
            "public attributes set by __init__",
            f"only the parameters {sorted(params)}",
            extra,
        )


_MISSING = object()


def check_get_params_round_trip(plugin: Component) -> None:
    """``type(p)(**p.get_params()).get_params()`` equals ``p.get_params()``."""
    params = plugin.get_params()
    again = type(plugin)(**params).get_params()
    if set(again) != set(params) or not all(_same(params[k], again[k]) for k in params):
        fail(plugin, "check_get_params_round_trip", "get_params after a rebuild", params, again)


def check_clone(plugin: Component) -> None:
    """``clone()`` returns a new instance with equal parameters and the same hash."""
    twin = plugin.clone()
    if twin is plugin or type(twin) is not type(plugin):
        fail(plugin, "check_clone", "clone()", f"a new {type(plugin).__name__}", repr(twin))
    a, b = plugin.get_params(), twin.get_params()
    if not all(_same(a[k], b.get(k, _MISSING)) for k in a):
        fail(plugin, "check_clone", "parameters of the clone", a, b)
    if twin.params_hash() != plugin.params_hash():
        fail(
            plugin,
            "check_clone",
            "params_hash of the clone",
            plugin.params_hash(),
            twin.params_hash(),
        )


def check_params_hash(plugin: Component) -> None:
    """Parameters are JSON-like; the hash is stable and changes with every parameter.

    Except the declared ``execution_params`` (batch or chunk sizes), which must
    leave it unchanged; that they change no value is for the plugin's tests.
    """
    params = plugin.get_params()
    bad = sorted(k for k, v in params.items() if not _json_like(v))
    if bad:
        fail(
            plugin,
            "check_params_hash",
            f"parameter value(s) {bad} (they feed cache keys)",
            "JSON-like values (None, bool, int, finite float, str, path, enum, list, dict)",
            {k: type(params[k]).__name__ for k in bad},
        )
    first = plugin.params_hash()
    if plugin.params_hash() != first or plugin.clone().params_hash() != first:
        fail(
            plugin,
            "check_params_hash",
            "params_hash() on equal parameters",
            "a stable hash",
            "different hashes",
        )
    unknown = sorted(set(plugin.execution_params) - set(params))
    if unknown:
        fail(
            plugin,
            "check_params_hash",
            "execution_params",
            "names of constructor parameters",
            f"unknown name(s) {unknown}",
        )
    for key, value in params.items():
        changed = plugin.clone().set_params(**{key: _changed(value)})
        execution = key in plugin.execution_params
        if (changed.params_hash() == first) != execution:
            fail(
                plugin,
                "check_params_hash",
                f"params_hash after changing {key!r}"
                + (" (an execution parameter)" if execution else ""),
                "the same hash" if execution else "a different hash",
                "a different hash" if execution else "the same hash",
            )


def check_repr(plugin: Component) -> None:
    """``repr()`` names the class and the parameters that differ from their defaults."""
    text = repr(plugin)
    if not isinstance(text, str) or not text.startswith(type(plugin).__name__):
        fail(plugin, "check_repr", "repr()", f"'{type(plugin).__name__}(...)'", text)


def check_metadata(plugin: Component) -> None:
    """``name`` (namespace.method), ``version`` and ``citation`` are declared."""
    cls = type(plugin)
    name = getattr(cls, "name", "")
    if not isinstance(name, str) or not _NAME.match(name):
        fail(
            plugin,
            "check_metadata",
            "class attribute name",
            "a snake_case '<namespace>.<method>' string",
            repr(name),
        )
    for attr in ("version", "citation"):
        value = getattr(cls, attr, "")
        if not isinstance(value, str) or not value.strip():
            fail(
                plugin,
                "check_metadata",
                f"class attribute {attr}",
                "a non-empty string",
                repr(value),
            )


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, h) for h in typing.get_args(hint))
    if origin is frozenset:
        (inner,) = typing.get_args(hint)
        return isinstance(value, frozenset) and all(_matches(v, inner) for v in value)
    if origin is tuple:
        return isinstance(value, tuple)
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, hint)


def check_tags(plugin: Component) -> None:
    """``tags`` is the kind's frozen dataclass with correctly typed fields."""
    _, tags_type = KINDS[kind_of(plugin)]
    declared = getattr(type(plugin), "tags", None)
    tags = getattr(plugin, "get_tags", lambda: declared)()
    for where, value in (("class attribute tags", declared), ("get_tags()", tags)):
        if type(value) is not tags_type:
            fail(plugin, "check_tags", where, tags_type.__name__, type(value).__name__)
    params = getattr(type(tags), "__dataclass_params__", None)
    if not dataclasses.is_dataclass(tags) or params is None or not params.frozen:
        fail(plugin, "check_tags", "tags", "a frozen dataclass", type(tags).__name__)
    hints = typing.get_type_hints(tags_type)
    for f in dataclasses.fields(tags):
        value = getattr(tags, f.name)
        if not _matches(value, hints[f.name]):
            fail(plugin, "check_tags", f"tags.{f.name}", hints[f.name], repr(value))
        if (
            isinstance(value, frozenset)
            and f.name in ("modalities", "tasks", "output")
            and not value
        ):
            fail(plugin, "check_tags", f"tags.{f.name}", "a non-empty set", "an empty set")


SHARED_CHECKS: tuple[Check, ...] = (
    check_init_signature,
    check_init_stores_params,
    check_get_params_round_trip,
    check_clone,
    check_params_hash,
    check_repr,
    check_metadata,
    check_tags,
)


def shared_checks(plugin: Component) -> Iterator[tuple[str, Check]]:
    """Yield the checks every plugin must pass, whatever its kind."""
    for check in SHARED_CHECKS:
        yield check.__name__, check
