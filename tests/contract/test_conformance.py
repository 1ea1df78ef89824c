"""Every registered plugin, built-in or installed, passes the conformance kit.

Plugins are discovered through the ``harness`` entry points when this module
is collected, so a plugin registered later is covered without editing this
file. Instances come from the class's ``conformance_instances(tmp_dir)``
hook when it has one, else ``cls()``. A plugin that cannot be imported or
instantiated fails ``test_plugin_loads`` instead of breaking collection.
"""

from __future__ import annotations

import atexit
import pathlib
import shutil
import tempfile

import pytest

from harness.contracts import Component
from harness.plugin_manager import get_registries
from harness.testing import ExpectedFailures, instances_of, parametrize_with_checks

KINDS = ("datasets", "models", "explainers", "metrics")

# Checks a plugin fails by design: name -> {check: reason}, shown as xfail in the report.
# (Controls are exempt from target sensitivity by the kit itself.)
EXPECTED_FAILURES: dict[str, ExpectedFailures] = {}


def _discover() -> tuple[list[Component], dict[str, str], list[str]]:
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="harness-contract-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    registries = get_registries()
    plugins: list[Component] = []
    errors: dict[str, str] = {}
    names: list[str] = []
    for kind in KINDS:
        registry = registries.kind(kind)
        for name in registry.names():
            key = f"{kind}:{name}"
            names.append(key)
            folder = tmp / kind / name
            folder.mkdir(parents=True)
            try:
                plugins += instances_of(registry.get(name), folder)
            except Exception as exc:  # noqa: BLE001 - reported by test_plugin_loads
                errors[key] = f"{type(exc).__name__}: {exc}"
    return plugins, errors, names


PLUGINS, LOAD_ERRORS, NAMES = _discover()


@pytest.mark.parametrize("key", NAMES)
def test_plugin_loads(key: str) -> None:
    if key in LOAD_ERRORS:
        pytest.fail(f"{key} cannot be loaded or instantiated: {LOAD_ERRORS[key]}")


@parametrize_with_checks(
    PLUGINS, expected_failed_checks=lambda p: EXPECTED_FAILURES.get(p.name, {})
)
def test_plugin_conforms(plugin: Component, check) -> None:
    check(plugin)
