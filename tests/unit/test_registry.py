from __future__ import annotations

import pathlib

import pytest
from _core_plugins import Gradient

from harness.contracts import Explainer
from harness.errors import PluginConflictError, PluginError
from harness.plugin_manager import discover
from harness.registry import Registry


def test_conflict_names_both_plugins_when_used_and_spares_other_names() -> None:
    reg: Registry[Explainer] = Registry("explainers", Explainer)
    reg.add("x.grad", Gradient, "dist-a", "1.0", plugin="a")
    reg.add("x.grad", Gradient, "dist-b", "2.0", plugin="b")
    reg.add("x.other", Gradient, "dist-b", "2.0", plugin="b")
    reg.freeze()
    expected = (
        r"dist-a 1.0 \(entry point 'a'\) and dist-b 2.0 \(entry point 'b'\); "
        r"uninstall one or block it with -p no:a or -p no:b"
    )
    for use in (reg.entry, reg.get):
        with pytest.raises(PluginConflictError, match=expected):
            use("x.grad")
    assert reg.names() == ["x.grad", "x.other"]
    assert reg.entry("x.other").plugin == "b"


def test_unknown_name_suggests_and_lazy_target_loads() -> None:
    reg: Registry[Explainer] = Registry("explainers", Explainer)
    reg.add("toy.gradient", "_core_plugins:Gradient", "dist", "1")
    reg.freeze()
    assert reg.get("toy.gradient") is Gradient
    with pytest.raises(PluginError, match="Did you mean: toy.gradient"):
        reg.get("toy.gradiant")
    with pytest.raises(PluginError, match="frozen"):
        reg.add("late", Gradient, "dist", "1")


def test_bad_targets_are_reported_with_the_distribution() -> None:
    reg: Registry[Explainer] = Registry("explainers", Explainer)
    reg.add("gone", "no_such_module:X", "dist-x", "1")
    reg.add("wrong", "_core_plugins:Accuracy", "dist-x", "1")
    with pytest.raises(PluginError, match="dist-x.*cannot load 'no_such_module:X'"):
        reg.get("gone")
    with pytest.raises(PluginError, match="expected a subclass of Explainer"):
        reg.get("wrong")


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("def broken(:\n", "SyntaxError"),
        ("raise RuntimeError('no licence file')\n", "RuntimeError"),
    ],
)
def test_a_module_failing_at_import_is_a_plugin_error(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, source: str, error: str
) -> None:
    (tmp_path / f"fails_{error.lower()}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    reg: Registry[Explainer] = Registry("explainers", Explainer)
    reg.add("bad", f"fails_{error.lower()}:X", "dist-x", "1")
    with pytest.raises(
        PluginError, match=f"dist-x.*cannot load 'fails_{error.lower()}:X': {error}"
    ):
        reg.get("bad")


def test_builtins_arrive_through_the_entry_point_and_can_be_blocked() -> None:
    regs = discover()
    entry = regs.explainers.entry("captum.grad_cam")
    assert (entry.distribution, entry.dist_version) == ("harness-builtins", "0.1.0")
    assert regs.metrics.entry("localisation.pointing_game").distribution == "harness"
    blocked = discover(blocked=("builtins",))
    assert "captum.grad_cam" not in blocked.explainers.names()
    assert "localisation.pointing_game" in blocked.metrics.names()


def test_every_registered_target_imports() -> None:
    regs = discover()
    for kind in ("datasets", "models", "explainers", "metrics"):
        for name in regs.kind(kind).names():
            assert regs.kind(kind).get(name).name == name
