"""Component: parameters-only constructors, get/set params, clone, params_hash, repr."""

from __future__ import annotations

from typing import ClassVar

import pytest

from harness.contracts import Component, canonical_json, sha256_of
from harness.errors import PluginError


class Widget(Component):
    name: ClassVar[str] = "test.widget"
    version: ClassVar[str] = "2"

    def __init__(
        self, *, steps: int = 8, scales: list[float] | None = None, mode: str = "a"
    ) -> None:
        self.steps = steps
        self.scales = scales
        self.mode = mode


class Bare(Component):
    name: ClassVar[str] = "test.bare"


def test_params_are_introspected_from_init():
    assert Widget.param_names() == ["steps", "scales", "mode"]
    assert Widget.param_defaults() == {"steps": 8, "scales": None, "mode": "a"}
    assert Widget(steps=3).get_params() == {"steps": 3, "scales": None, "mode": "a"}
    assert Bare.param_names() == [] and Bare().get_params() == {}


def test_set_params_validates_names():
    widget = Widget().set_params(steps=5)
    assert widget.steps == 5
    with pytest.raises(PluginError, match="unknown parameter 'step'"):
        Widget().set_params(step=5)


def test_clone_copies_mutable_params_deeply():
    original = Widget(scales=[1.0, 2.0])
    twin = original.clone()
    assert twin is not original and twin.get_params() == original.get_params()
    assert twin.scales is not original.scales
    twin.scales.append(3.0)  # type: ignore[union-attr]
    assert original.scales == [1.0, 2.0]


def test_params_hash_is_stable_and_sensitive():
    assert Widget().params_hash() == Widget().params_hash()
    assert Widget(steps=9).params_hash() != Widget().params_hash()
    assert Widget(mode="b").params_hash() != Widget().params_hash()
    expected = sha256_of({"name": "test.widget", "version": "2", "params": Widget().get_params()})
    assert Widget().params_hash() == expected


def test_params_hash_changes_with_version():
    class Widget3(Widget):
        version: ClassVar[str] = "3"

    assert Widget3().params_hash() != Widget().params_hash()


def test_canonical_json_sorts_keys():
    assert canonical_json({"b": 1, "a": [1, 2]}) == '{"a":[1,2],"b":1}'


def test_repr_shows_only_changed_params():
    assert repr(Widget()) == "Widget()"
    assert repr(Widget(steps=3, mode="b")) == "Widget(steps=3, mode='b')"


def test_var_args_are_rejected():
    class Loose(Component):
        name: ClassVar[str] = "test.loose"

        def __init__(self, **kwargs: object) -> None:
            self.kwargs = kwargs

    with pytest.raises(PluginError, match=r"\*args/\*\*kwargs"):
        Loose.param_names()
