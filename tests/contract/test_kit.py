"""The conformance kit itself: the toys conform, and every kind of breakage is caught."""

from __future__ import annotations

import pathlib
from typing import ClassVar

import pytest

from harness import ContractViolation, PluginError
from harness.contracts import (
    Component,
)
from harness.testing import (
    CheckResult,
    all_check_names,
    check_plugin,
    instances_of,
    parametrize_with_checks,
    plugin_checks,
    plugin_id,
    run_checks_for_name,
)
from harness.testing import fixtures as fx


@parametrize_with_checks(fx.toy_plugins())
def test_toy_conforms(plugin: Component, check) -> None:
    check(plugin)


def test_plugin_checks_follow_tags():
    names = {n for n, _ in plugin_checks(fx.ToyGradCAM())}
    assert {"check_explainer_deterministic", "check_explainer_batch_independence"} <= names
    assert {"check_init_stores_params", "check_tags", "check_metadata"} <= names

    class Sampling(fx.ToyGradCAM):
        tags: ClassVar = fx.ToyGradCAM.tags.__class__(
            modalities=fx.ToyGradCAM.tags.modalities,
            needs=fx.ToyGradCAM.tags.needs,
            deterministic=False,
            output=fx.ToyGradCAM.tags.output,
        )

    stochastic = {n for n, _ in plugin_checks(Sampling())}
    # a stochastic explainer must still draw per sample id: batch independence under one seed
    assert "check_explainer_deterministic" not in stochastic
    assert {"check_explainer_reproducible", "check_explainer_batch_independence"} <= stochastic
    black_box = {n for n, _ in plugin_checks(fx.ToyNaiveBayes())}
    assert (
        "check_model_target_layer" not in black_box
        and "check_model_differentiable" not in black_box
    )
    assert {n for n, _ in plugin_checks(fx.ToyCNN())} >= {
        "check_model_target_layer",
        "check_model_randomisable_layers",
    }


def test_every_check_name_is_known():
    names = {n for p in fx.toy_plugins() for n, _ in plugin_checks(p)}
    assert names <= all_check_names()


def test_plugin_checks_rejects_non_plugins():
    with pytest.raises(
        TypeError, match="expected an instance of Dataset, Model, Explainer or Metric"
    ):
        list(plugin_checks(object()))  # type: ignore[arg-type]


class NotStoring(fx.ToyAttentionSentence):
    def __init__(self, *, grid: int = 4, temperature: float = 1.0) -> None:
        self.grid = grid
        self.temperature = float(temperature) * 1.0
        self.cache: dict[str, int] = {}


def test_check_plugin_summarises_every_failure():
    with pytest.raises(ContractViolation) as info:
        check_plugin(NotStoring(temperature=2.0))
    message = str(info.value)
    assert message.startswith("explainer 'toy.attention_sentence'")
    assert "conformance checks failed" in message
    assert "check_init_stores_params:" in message
    assert info.value.plugin == "toy.attention_sentence"


def test_check_plugin_returns_results_and_honours_expected_failures():
    results = check_plugin(
        NotStoring(temperature=2.0),
        expected_failed_checks={
            "check_init_stores_params": "converts on purpose",
            "check_repr": "fine",
        },
        on_fail=None,
    )
    by_name = {r.name: r for r in results}
    assert isinstance(by_name["check_clone"], CheckResult)
    assert by_name["check_init_stores_params"].status == "xfailed"
    assert "converts on purpose" in by_name["check_init_stores_params"].message
    assert by_name["check_repr"].status == "xpassed"
    assert all(r.passed for r in results) and all(r.seconds >= 0 for r in results)


def test_unknown_expected_failure_names_get_suggestions():
    with pytest.raises(PluginError, match="Did you mean: check_repr"):
        check_plugin(fx.ToyLesions(), expected_failed_checks={"check_reprr": "typo"})


def test_parametrize_with_checks_ids_marks_and_class_expansion(tmp_path: pathlib.Path):
    class FromHook(fx.ToyLesions):
        @classmethod
        def conformance_instances(cls, tmp_dir: pathlib.Path) -> list[FromHook]:
            (tmp_dir / "written").write_text("fixture tree")
            return [cls(n=8), cls(n=12, seed=1)]

    mark = parametrize_with_checks(
        [FromHook, fx.ToyCNN(width=4)],
        expected_failed_checks=lambda p: {"check_model_fit": "slow"} if p.name == "toy.cnn" else {},
    )
    argnames, params = mark.args
    assert argnames == "plugin, check"
    ids = [p.id for p in params]
    assert "toy.lesions(n=8)-check_dataset_load" in ids
    assert "toy.lesions(n=12, seed=1)-check_dataset_splits" in ids
    fit = next(p for p in params if p.id == "toy.cnn(width=4)-check_model_fit")
    assert [m.name for m in fit.marks] == ["xfail"]
    assert instances_of(FromHook, tmp_path)[0].n == 8 and (tmp_path / "written").exists()


def test_instances_of_explains_missing_defaults(tmp_path: pathlib.Path):
    class NeedsRoot(fx.ToyLesions):
        def __init__(self, *, root: str, n: int = 8, size: int = 32, seed: int = 0) -> None:
            self.root = root
            super().__init__(n=n, size=size, seed=seed)

    with pytest.raises(PluginError, match="conformance_instances"):
        instances_of(NeedsRoot, tmp_path)


def test_plugin_id_hides_temporary_folders(tmp_path: pathlib.Path):
    class Rooted(fx.ToyLesions):
        def __init__(self, *, root: pathlib.Path | None = None, n: int = 32) -> None:
            self.root = root
            self.n = n
            self.size = 32
            self.seed = 0

    assert plugin_id(Rooted(root=tmp_path / "tree")) == "toy.lesions(root='tree')"


def test_run_checks_for_name_suggests_close_names():
    with pytest.raises(PluginError, match="no plugin named 'toy.lesionz'"):
        run_checks_for_name(None, "toy.lesionz")
    with pytest.raises(PluginError, match="unknown kind"):
        run_checks_for_name("widgets", "x")


def test_run_checks_for_name_runs_a_registered_plugin():
    from harness.plugin_manager import get_registries

    if "classification.accuracy" not in get_registries().metrics:
        pytest.skip("classification.accuracy is not registered yet")
    results = run_checks_for_name("metric", "classification.accuracy")
    assert results and {r.name for r in results} >= {"check_metadata", "check_metric_declarations"}
    assert all(isinstance(r, CheckResult) for r in results)


def test_target_blind_explainers_are_exempt_from_target_sensitivity():
    import dataclasses

    class Control(fx.ToyInputXGradient):
        name: ClassVar[str] = "control.toy"
        tags = dataclasses.replace(fx.ToyInputXGradient.tags, target_sensitive=False)

    assert "check_explainer_target_sensitivity" not in dict(plugin_checks(Control()))
    assert "check_explainer_target_sensitivity" in dict(plugin_checks(fx.ToyInputXGradient()))
