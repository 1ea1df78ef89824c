"""Conformance kit: check a dataset, model, explainer or metric plugin against its contract.

Modelled on scikit-learn's ``check_estimator`` / ``parametrize_with_checks``:
small named checks per plugin kind, run on tiny CPU fixtures
(:mod:`harness.testing.fixtures`) that exercise every contract shape. In a
plugin's own test suite::

    from harness.testing import parametrize_with_checks

    @parametrize_with_checks(
        [MyLRP(), MyLRP(epsilon=1e-3)],
        expected_failed_checks=lambda p: {"check_explainer_target_sensitivity": "by design"},
    )
    def test_my_plugin_conforms(plugin, check):
        check(plugin)

or, outside pytest, ``check_plugin(MyLRP())`` raises a
:class:`~harness.errors.ContractViolation` listing every failed check.

Checks by kind (only those that apply to the plugin's tags are run):

- every plugin: keyword-only ``__init__`` that only stores its arguments,
  ``get_params`` round trip, ``clone``, a stable ``params_hash`` that every
  parameter changes, ``repr``, ``name`` / ``version`` / ``citation``, typed
  frozen ``tags``;
- datasets: ``info()`` against the tags, disjoint deterministic splits, the
  shapes and dtypes of ``load`` (``harness/contracts/data.py``), order and
  determinism of ``load``;
- models: logits (N, K) and probabilities on every fixture the tags accept,
  batch independence, ``fit`` changes the state (with ``epochs=1`` when the
  model has an ``epochs`` parameter, as scikit-learn caps ``max_iter``),
  checkpoint round trip through ``torch.load(weights_only=True)``, gradients,
  target layer, randomisable layers;
- explainers: declared outputs only, finite, on the model's device, determinism
  or seeded reproducibility, batch independence, target sensitivity (not for
  target-blind explainers such as controls), no side effects on the model or the batch;
  model-agnostic explainers run on black-box models;
- metrics: declared direction and bounds, values within bounds, perfect beats
  inverted (corpus metrics), per-row scores, determinism, batch independence,
  needs declared consistently (``CapabilityError`` without a declared input),
  no side effects.

The plugin author's hook
------------------------
A plugin class may define::

    @classmethod
    def conformance_instances(cls, tmp_dir: pathlib.Path) -> list[Self]:
        '''Small, fast instances to check (file-based datasets write a fixture tree in tmp_dir).'''

The kit (:func:`instances_of`), ``harness check NAME`` and the project's
contract tests use it when present, else ``cls()``.
"""

from __future__ import annotations

import atexit
import functools
import inspect
import os
import pathlib
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from harness.contracts import Component
from harness.errors import ContractViolation, PluginError, suggest
from harness.testing._common import KINDS, Check, CheckResult, describe, kind_of, shared_checks
from harness.testing._state import seeded

ExpectedFailures = Mapping[str, str]
"""Check name -> reason it is expected to fail for a plugin."""

_KINDS = {"dataset": "datasets", "model": "models", "explainer": "explainers", "metric": "metrics"}


def _kind_checks(plugin: Component) -> Iterator[tuple[str, Check]]:
    from harness.testing import _dataset, _explainer, _metric, _model

    kind = kind_of(plugin)
    tags = getattr(plugin, "get_tags", lambda: getattr(type(plugin), "tags", None))()
    if type(tags) is not KINDS[kind][1]:
        return  # check_tags reports it; the kind's checks are chosen from the tags
    module = {"dataset": _dataset, "model": _model, "explainer": _explainer, "metric": _metric}
    yield from module[kind].checks(plugin)


def _isolated(name: str, check: Check) -> Check:
    """Wrap ``check`` so it runs under a fixed seed and restores the caller's RNG states."""

    @functools.wraps(check)
    def run(plugin: Component) -> None:
        with seeded(0):
            check(plugin)

    run.__name__ = name
    return run


def plugin_checks(plugin: Component) -> Iterator[tuple[str, Check]]:
    """Yield ``(name, check)`` for every check that applies to ``plugin``'s kind and tags.

    Examples
    --------
    >>> from harness.testing import fixtures, plugin_checks
    >>> names = [name for name, _ in plugin_checks(fixtures.ToyGradCAM())]
    >>> "check_explainer_batch_independence" in names
    True
    """
    for name, check in (*shared_checks(plugin), *_kind_checks(plugin)):
        yield name, _isolated(name, check)


def all_check_names() -> set[str]:
    """Return the name of every check of every kind (to validate expected failures)."""
    from harness.testing import _common, _dataset, _explainer, _metric, _model

    modules = (_common, _dataset, _explainer, _metric, _model)
    return {n for m in modules for n in vars(m) if n.startswith("check_")}


def _validate_expected(expected: ExpectedFailures, where: str) -> None:
    known = all_check_names()
    for name in expected:
        if name not in known:
            close = suggest(name, known)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise PluginError(
                f"{where}: expected_failed_checks names an unknown check {name!r}.{hint}"
            )


def _run_one(plugin: Component, name: str, check: Check, reason: str | None) -> CheckResult:
    start = time.perf_counter()
    try:
        check(plugin)
    except Exception as exc:  # noqa: BLE001 - a check failure is data here
        status, message = ("xfailed", f"{reason} ({exc})") if reason else ("failed", f"{exc}")
        if not isinstance(exc, ContractViolation):
            message = f"{type(exc).__name__}: {message}"
    else:
        status, message = ("xpassed", reason) if reason else ("passed", "")
    return CheckResult(repr(plugin), name, status, message or "", time.perf_counter() - start)


def check_plugin(
    plugin: Component,
    *,
    expected_failed_checks: ExpectedFailures | None = None,
    on_fail: str | None = "raise",
) -> list[CheckResult]:
    """Run every applicable check on ``plugin`` and return the results.

    Parameters
    ----------
    plugin : Dataset, Model, Explainer or Metric instance
        The plugin to check; it is never mutated (checks work on clones).
    expected_failed_checks : mapping of check name to reason, optional
        Checks expected to fail; they are reported as ``xfailed``.
    on_fail : {"raise", None}
        ``"raise"`` raises :class:`~harness.errors.ContractViolation` listing
        every unexpected failure after all checks ran; ``None`` only returns.

    Examples
    --------
    >>> from harness.testing import check_plugin, fixtures
    >>> results = check_plugin(fixtures.ToyLesions())
    >>> all(r.passed for r in results)
    True
    """
    expected = dict(expected_failed_checks or {})
    _validate_expected(expected, describe(plugin))
    results = [_run_one(plugin, n, c, expected.get(n)) for n, c in plugin_checks(plugin)]
    failed = [r for r in results if r.status == "failed"]
    if failed and on_fail == "raise":
        lines = "\n".join(f"  {r.name}: {r.message}" for r in failed)
        raise ContractViolation(
            f"{describe(plugin)}: {len(failed)} of {len(results)} conformance checks failed:"
            f"\n{lines}",
            plugin=getattr(plugin, "name", None),
        )
    return results


def instances_of(cls: type[Component], tmp_dir: pathlib.Path) -> list[Component]:
    """Return ``cls.conformance_instances(tmp_dir)`` when defined, else ``[cls()]``."""
    hook = getattr(cls, "conformance_instances", None)
    where = f"{cls.__module__}.{cls.__qualname__}"
    try:
        instances = list(hook(pathlib.Path(tmp_dir))) if callable(hook) else [cls()]
    except TypeError as exc:
        raise PluginError(
            f"{where}: cannot build a default instance ({exc}) - expected defaults for every "
            "parameter or a conformance_instances(tmp_dir) classmethod.",
            plugin=getattr(cls, "name", None),
        ) from exc
    if not instances or not all(isinstance(i, cls) for i in instances):
        raise ContractViolation(
            f"{where}: conformance_instances returned {instances!r} - expected a non-empty list "
            f"of {cls.__name__} instances.",
            plugin=getattr(cls, "name", None),
        )
    return instances


def _session_dir() -> pathlib.Path:
    path = pathlib.Path(tempfile.mkdtemp(prefix="harness-conformance-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def plugin_id(plugin: Component) -> str:
    """Return a short, stable test id: the name and the parameters that differ from defaults.

    Paths (path objects or absolute path strings) are shown by their last
    component, so ids do not change with temporary folders.
    """
    defaults = plugin.param_defaults()
    shown = []
    for key, value in plugin.get_params().items():
        if (
            key in defaults
            and defaults[key] is not inspect.Parameter.empty
            and _equal(defaults[key], value)
        ):
            continue
        is_path = isinstance(value, os.PathLike) or (
            isinstance(value, str) and os.path.isabs(value)
        )
        text = repr(pathlib.Path(value).name) if is_path else repr(value)
        shown.append(f"{key}={text}")
    name = getattr(plugin, "name", "") or type(plugin).__name__
    return f"{name}({', '.join(shown)})" if shown else name


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError, RuntimeError):
        return False


def parametrize_with_checks(
    plugins: Iterable[Component | type[Component]],
    *,
    expected_failed_checks: Callable[[Component], ExpectedFailures] | None = None,
) -> Any:
    """Return a ``pytest.mark.parametrize("plugin, check", ...)`` over every (plugin, check) pair.

    Classes in ``plugins`` are expanded with :func:`instances_of`.
    ``expected_failed_checks(plugin)`` maps check names to reasons; those
    checks are marked ``xfail``. pytest is imported only when this is called.

    Examples
    --------
    >>> from harness.testing import fixtures, parametrize_with_checks
    >>> mark = parametrize_with_checks([fixtures.ToyLesions])
    >>> mark.args[0]
    'plugin, check'
    """
    import pytest

    tmp_dir: pathlib.Path | None = None
    params = []
    for item in plugins:
        if isinstance(item, type):
            tmp_dir = tmp_dir or _session_dir()
            instances = instances_of(item, tmp_dir)
        else:
            instances = [item]
        for plugin in instances:
            expected = dict(expected_failed_checks(plugin)) if expected_failed_checks else {}
            _validate_expected(expected, describe(plugin))
            for name, check in plugin_checks(plugin):
                marks = (
                    [pytest.mark.xfail(reason=expected[name], strict=False)]
                    if name in expected
                    else []
                )
                params.append(
                    pytest.param(plugin, check, id=f"{plugin_id(plugin)}-{name}", marks=marks)
                )
    return pytest.mark.parametrize("plugin, check", params)


def run_checks_for_name(
    kind: str | None, name: str, blocked: Sequence[str] = ()
) -> list[CheckResult]:
    """Check the plugin registered as ``name`` (the ``harness check NAME`` command).

    ``kind`` is ``"datasets"``, ``"models"``, ``"explainers"``, ``"metrics"``
    (singular accepted) or None to search every kind; ``blocked`` leaves out
    plugins by entry-point name (``-p no:NAME``). Every instance from
    :func:`instances_of` is checked; failures are returned, not raised.
    """
    from harness.plugin_manager import get_registries

    registries = get_registries(tuple(blocked))
    kinds = list(_KINDS.values()) if kind is None else [_KINDS.get(kind, kind)]
    if any(k not in _KINDS.values() for k in kinds):
        raise PluginError(
            f"harness check: unknown kind {kind!r} - expected one of {sorted(_KINDS.values())}."
        )
    found = [k for k in kinds if name in registries.kind(k)]
    if not found:
        if len(kinds) == 1:
            registries.kind(kinds[0]).entry(name)  # raises with suggestions
        pool = [n for k in kinds for n in registries.kind(k).names()]
        close = suggest(name, pool)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise PluginError(f"harness check: no plugin named {name!r}.{hint}", plugin=name)
    results: list[CheckResult] = []
    with tempfile.TemporaryDirectory(prefix="harness-check-") as tmp:
        for k in found:
            cls = registries.kind(k).get(name)
            for instance in instances_of(cls, pathlib.Path(tmp)):
                results += check_plugin(instance, on_fail=None)
    return results


__all__ = [
    "Check",
    "CheckResult",
    "ExpectedFailures",
    "all_check_names",
    "check_plugin",
    "instances_of",
    "parametrize_with_checks",
    "plugin_checks",
    "plugin_id",
    "run_checks_for_name",
]
