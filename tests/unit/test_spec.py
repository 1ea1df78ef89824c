from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from _core_plugins import toy_registries

from harness.errors import SpecError
from harness.spec import load_spec, validate_spec

GOOD = """
benchmark: toy
seed: 3
dataset: {name: toy.images, params: {n: 8}}
models: [toy.cnn]
explainers: [toy.gradient, {name: toy.gradient, label: signed, params: {absolute: false}}]
metrics: [toy.mass, toy.accuracy]
explain: {n: 4}
"""


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_valid_spec_parses_into_frozen_objects(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, GOOD), toy_registries())
    assert spec.benchmark == "toy" and spec.seed == 3
    assert [e.key for e in spec.explainers] == ["toy.gradient", "signed"]
    assert spec.explainers[1].params == {"absolute": False}
    assert spec.explain.n == 4 and spec.explain.split == "test"
    assert len(spec.spec_hash) == 16
    with pytest.raises(AttributeError):
        spec.seed = 4  # type: ignore[misc]


def test_spec_hash_changes_with_content_not_with_file_name(tmp_path: Path) -> None:
    regs = toy_registries()
    a = load_spec(write(tmp_path, GOOD, "a.yaml"), regs)
    b = load_spec(write(tmp_path, GOOD, "b.yaml"), regs)
    c = load_spec(write(tmp_path, GOOD.replace("seed: 3", "seed: 4"), "c.yaml"), regs)
    assert a.spec_hash == b.spec_hash != c.spec_hash


def test_unknown_plugin_gets_closest_names_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("explainers: [toy.gradient,", "explainers: [toy.gradiant,"))
    spec, problems = validate_spec(path, toy_registries())
    assert spec is None and len(problems) == 1
    p = problems[0]
    assert p.key_path == "explainers[0].name" and p.line == 6
    assert "toy.gradient" in p.suggestions
    assert str(path) in str(p) and "Did you mean: toy.gradient" in str(p)


def test_unknown_parameter_suggests_the_right_one(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("absolute: false", "absolut: false"))
    _, problems = validate_spec(path, toy_registries())
    assert [p.key_path for p in problems] == ["explainers[1].params.absolut"]
    assert "absolute" in problems[0].suggestions


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    bad = (
        GOOD.replace("seed: 3", "sead: 3")
        .replace("n: 8", "n: eight")
        .replace("toy.mass", "toy.mas")
    )
    _, problems = validate_spec(write(tmp_path, bad), toy_registries())
    paths = sorted(p.key_path for p in problems)
    assert paths == ["dataset.params.n", "metrics[0].name", "sead"]
    assert any("seed" in p.suggestions for p in problems)
    assert "expected int" in str(next(p for p in problems if p.key_path == "dataset.params.n"))


def test_load_spec_raises_one_error_listing_all_problems(tmp_path: Path) -> None:
    bad = GOOD.replace("seed: 3", "sead: 3").replace("toy.mass", "toy.mas")
    with pytest.raises(SpecError, match="2 problems"):
        load_spec(write(tmp_path, bad), toy_registries())


def test_missing_sections_and_bad_values(tmp_path: Path) -> None:
    text = "benchmark: x\ndevice: tpu\nexplain: {targets: everything}\n"
    _, problems = validate_spec(write(tmp_path, text), toy_registries())
    paths = {p.key_path for p in problems}
    assert {"datasets", "models", "metrics", "device", "explain.targets"} <= paths


def test_include_merges_and_detects_cycles(tmp_path: Path) -> None:
    write(
        tmp_path, "dataset: toy.images\nmodels: [toy.cnn]\nmetrics: [toy.accuracy]\n", "base.yaml"
    )
    spec = load_spec(write(tmp_path, "include: base.yaml\nbenchmark: inc\n"), toy_registries())
    assert spec.benchmark == "inc" and spec.datasets[0].name == "toy.images"
    write(tmp_path, "include: b.yaml\n", "a.yaml")
    write(tmp_path, "include: a.yaml\n", "b.yaml")
    _, problems = validate_spec(tmp_path / "a.yaml", toy_registries())
    assert "include cycle" in str(problems[0])


def test_yaml_is_loaded_safely(tmp_path: Path) -> None:
    path = write(tmp_path, "benchmark: !!python/object/apply:os.system ['echo hi']\n")
    _, problems = validate_spec(path, toy_registries())
    assert problems and "invalid YAML" in str(problems[0])


def test_duplicate_plugin_needs_a_label(tmp_path: Path) -> None:
    text = GOOD.replace(
        "{name: toy.gradient, label: signed, params: {absolute: false}}", "toy.gradient"
    )
    _, problems = validate_spec(write(tmp_path, text), toy_registries())
    assert any("appears twice" in str(p) for p in problems)


def test_set_overrides_reach_nested_values(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    spec = load_spec(
        path,
        toy_registries(),
        ["dataset.params.n=5", "explainers[1].params.absolute=true", "seed=9"],
    )
    assert spec.datasets[0].params == {"n": 5} and spec.explainers[1].params == {"absolute": True}
    assert spec.seed == 9
    spec = load_spec(path, toy_registries(), ["models[0].params.epochs=3"])
    assert spec.models[0].params == {"epochs": 3}
    _, problems = validate_spec(path, toy_registries(), ["models[4].name=x"])
    assert "no such list item" in str(problems[0])
    _, problems = validate_spec(path, toy_registries(), ["dataset.params.n=many"])
    assert problems[0].key_path == "dataset.params.n"
