"""Component: the parameters-only base of every plugin (scikit-learn style)."""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
from typing import Any, ClassVar, TypeVar

from harness.errors import PluginError

C = TypeVar("C", bound="Component")


def canonical_json(obj: Any) -> str:
    """Serialise ``obj`` to JSON with sorted keys, so equal objects hash equally."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def sha256_of(obj: Any) -> str:
    """Return the hex sha256 of the canonical JSON of ``obj``."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()


class Component:
    """Base of datasets, models, explainers and metrics.

    ``__init__`` takes keyword-only parameters and stores each under the same
    name; it does no work. The parameters can be introspected, cloned and
    hashed, and they feed cache keys and result rows.
    """

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = ""
    #: Parameters that only say how the work is split (batch or chunk sizes) and
    #: change no value; cache keys and the seeds derived from them see their
    #: defaults, so setting one reuses cached results and draws the same numbers.
    execution_params: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def param_names(cls) -> list[str]:
        """Return the names of the keyword parameters of ``__init__``."""
        init = cls.__init__
        if init is object.__init__:
            return []
        sig = inspect.signature(init)
        names = []
        for p in sig.parameters.values():
            if p.name == "self":
                continue
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise PluginError(
                    f"{cls.__qualname__}.__init__ takes *args/**kwargs; "
                    "expected explicit keyword-only parameters",
                    plugin=cls.name or cls.__qualname__,
                )
            names.append(p.name)
        return names

    @classmethod
    def param_defaults(cls) -> dict[str, Any]:
        """Return the default value of every parameter (``inspect.Parameter.empty`` if none)."""
        if cls.__init__ is object.__init__:
            return {}
        sig = inspect.signature(cls.__init__)
        return {n: sig.parameters[n].default for n in cls.param_names()}

    def check_params(self) -> None:
        """Raise a PluginError naming a parameter value this plugin refuses (needs no data).

        Called by ``harness validate`` (and the spec loader of ``harness run``)
        right after construction, so a bad value is reported with the spec's
        key and line before any training, and again before each use.
        Subclasses check ranges and choices here; the default accepts all.
        """

    def get_params(self) -> dict[str, Any]:
        """Return the constructor parameters and their current values."""
        params = {}
        for n in self.param_names():
            try:
                params[n] = getattr(self, n)
            except AttributeError:
                raise PluginError(
                    f"{self.name or type(self).__qualname__}: parameter {n!r} - expected "
                    f"__init__ to store it as self.{n} (scikit-learn style), got no such "
                    "attribute",
                    plugin=self.name or type(self).__qualname__,
                ) from None
        return params

    def set_params(self: C, **params: Any) -> C:
        """Set parameters by name and return ``self``."""
        valid = set(self.param_names())
        for key, value in params.items():
            if key not in valid:
                raise PluginError(
                    f"{self.name}: unknown parameter {key!r}; expected one of {sorted(valid)}",
                    plugin=self.name,
                )
            setattr(self, key, value)
        return self

    def clone(self: C) -> C:
        """Return a new unfitted instance with the same parameters."""
        return type(self)(**copy.deepcopy(self.get_params()))

    def params_hash(self) -> str:
        """Hash of name, version and parameters; changes invalidate cached stages.

        :attr:`execution_params` enter at their defaults: they change no value.
        """
        params = self.get_params()
        defaults = self.param_defaults()
        params.update({n: defaults[n] for n in self.execution_params if n in params})
        return sha256_of({"name": self.name, "version": self.version, "params": params})

    def __repr__(self) -> str:
        defaults = self.param_defaults()
        changed = {k: v for k, v in self.get_params().items() if defaults.get(k) != v}
        args = ", ".join(f"{k}={v!r}" for k, v in changed.items())
        return f"{type(self).__name__}({args})"
