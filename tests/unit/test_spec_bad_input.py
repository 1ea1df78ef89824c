"""Bad input to the spec loader: every problem is a SpecError naming the file, key and line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from _core_plugins import toy_registries

from harness.errors import SpecError
from harness.plugin_manager import get_registries
from harness.spec import load_spec, validate_spec

GOOD = """
benchmark: toy
seed: 3
dataset: {name: toy.images, params: {n: 8}}
models: [toy.cnn]
explainers: [toy.gradient]
metrics: [toy.mass, toy.accuracy]
explain: {n: 4}
"""

REAL = """
benchmark: real
dataset: {name: synthetic.lesions, params: {n: 48, image_size: 32}}
models: [torchvision.resnet18]
metrics:
"""


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def problems_of(path: Path, overrides: tuple[str, ...] = (), real: bool = False) -> list[SpecError]:
    regs = get_registries() if real else toy_registries()
    spec, problems = validate_spec(path, regs, overrides)
    assert (spec is None) == bool(problems)
    return problems


def only(problems: list[SpecError], key: str) -> SpecError:
    hits = [p for p in problems if p.key_path == key]
    assert len(hits) == 1, [str(p) for p in problems]
    return hits[0]


def test_spec_that_is_not_utf8_names_file_and_byte(tmp_path: Path) -> None:
    path = tmp_path / "bad8.yaml"
    path.write_bytes(b"benchmark: x\n\xff\xfe bad\n")
    (problem,) = problems_of(path)
    assert problem.file == str(path)
    assert "UTF-8" in str(problem) and "position 13" in str(problem) and "0xff" in str(problem)


def test_override_with_invalid_yaml_names_the_override(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    (problem,) = problems_of(path, ("models=[{name: x",))
    assert problem.key_path.startswith("--set models=")
    assert "invalid YAML value" in str(problem) and "expected" in str(problem)
    with pytest.raises(SpecError, match="--set models="):
        load_spec(path, toy_registries(), ["models=[{name: x"])


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("bootstrap", "n", "0"),
        ("bootstrap", "n", "-5"),
        ("explain", "n", "-3"),
        ("explain", "n", "0"),
        ("explain", "batch_size", "0"),
        ("explain", "k", "0"),
    ],
)
def test_counts_below_one_are_refused_with_key_and_line(
    tmp_path: Path, section: str, key: str, value: str
) -> None:
    text = GOOD.replace("explain: {n: 4}\n", "") + f"{section}:\n  {key}: {value}\n"
    path = write(tmp_path, text)
    problem = only(problems_of(path), f"{section}.{key}")
    assert problem.line is not None
    lines = path.read_text().splitlines()
    assert lines[problem.line - 1].strip() == f"{key}: {value}"
    assert f"expected an integer >= 1, got {value}" in str(problem)


@pytest.mark.parametrize("confidence", ["1.5", "0", "1", "-0.1"])
def test_confidence_outside_the_open_unit_interval_is_refused(
    tmp_path: Path, confidence: str
) -> None:
    path = write(tmp_path, GOOD + f"bootstrap: {{confidence: {confidence}}}\n")
    problem = only(problems_of(path), "bootstrap.confidence")
    assert problem.line == 9 and "between 0 and 1" in str(problem)


def test_valid_counts_and_confidence_pass(tmp_path: Path) -> None:
    text = GOOD.replace("explain: {n: 4}", "explain: {n: 1, k: 1, batch_size: 1}")
    spec = load_spec(
        write(tmp_path, text + "bootstrap: {n: 1, confidence: 0.5}\n"), toy_registries()
    )
    assert spec.bootstrap.n == 1 and spec.explain.k == 1


@pytest.mark.parametrize("device", ["cuda:x", "cuda:", "gpu", "cpu:0", "cuda:1:2"])
def test_malformed_device_is_refused_with_line(tmp_path: Path, device: str) -> None:
    path = write(tmp_path, GOOD + f"device: '{device}'\n")
    problem = only(problems_of(path), "device")
    assert problem.line == 9 and repr(device) in str(problem)


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:0", "cuda:12"])
def test_documented_devices_pass(tmp_path: Path, device: str) -> None:
    assert load_spec(write(tmp_path, GOOD + f"device: '{device}'\n"), toy_registries())


def test_unknown_spec_version_is_refused(tmp_path: Path) -> None:
    problem = only(problems_of(write(tmp_path, GOOD + "version: 99\n")), "version")
    assert problem.line == 9 and "expected 1" in str(problem) and "99" in str(problem)
    assert load_spec(write(tmp_path, GOOD + "version: 1\n"), toy_registries()).version == 1


@pytest.mark.parametrize("name", ["../esc", "", ".hidden", "a/b", "a b"])
def test_benchmark_must_be_a_plain_file_name(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, GOOD.replace("benchmark: toy", f"benchmark: '{name}'"))
    problem = only(problems_of(path), "benchmark")
    assert problem.line == 2 and "plain file name" in str(problem)


def test_benchmark_with_dots_dashes_and_digits_passes(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("benchmark: toy", "benchmark: run-2.v1_b"))
    assert load_spec(path, toy_registries()).benchmark == "run-2.v1_b"


@pytest.mark.parametrize(
    "entry",
    [
        "{name: localisation.iou, params: {threshold: 0.5}}",
        "{name: localisation.iou, params: {threshold: 1}}",
        "{name: localisation.iou, params: {threshold: otsu}}",
        "{name: faithfulness.road, params: {percentages: [0.1, 0.5, 0.9]}}",
        "{name: robustness.max_sensitivity, params: {chunk: null}}",
        "{name: robustness.max_sensitivity, params: {chunk: 8}}",
    ],
)
def test_parameters_are_checked_against_the_constructor_annotation(
    tmp_path: Path, entry: str
) -> None:
    assert problems_of(write(tmp_path, REAL + f"  - {entry}\n"), real=True) == []


@pytest.mark.parametrize(
    ("entry", "key", "expected"),
    [
        ("{name: localisation.iou, params: {threshold: [1]}}", "threshold", "str | float"),
        ("{name: faithfulness.road, params: {percentages: 0.5}}", "percentages", "expected"),
        ("{name: faithfulness.road, params: {percentages: [a]}}", "percentages", "expected"),
        ("{name: robustness.max_sensitivity, params: {chunk: 2.5}}", "chunk", "int | None"),
        ("{name: robustness.max_sensitivity, params: {chunk: true}}", "chunk", "int | None"),
    ],
)
def test_values_the_annotation_refuses_are_reported(
    tmp_path: Path, entry: str, key: str, expected: str
) -> None:
    problems = problems_of(write(tmp_path, REAL + f"  - {entry}\n"), real=True)
    problem = only(problems, f"metrics[0].params.{key}")
    assert problem.line == 6 and expected in str(problem)


def test_plugin_refusals_are_collected_as_spec_problems(tmp_path: Path) -> None:
    text = REAL + (
        "  - classification.accuracy\n"
        "  - {name: complexity.entropy, params: {over: words}, label: e}\n"
        "  - {name: sanity.random_logit, params: {over: tokens}}\n"
    )
    problems = problems_of(write(tmp_path, text), real=True)
    entropy = only(problems, "metrics[1].params")
    logit = only(problems, "metrics[2].params")
    assert entropy.line == 7 and "'words'" in str(entropy)
    assert logit.line == 8 and "spearman" in str(logit)
    with pytest.raises(SpecError, match="2 problems"):
        load_spec(tmp_path / "spec.yaml", get_registries())


def test_a_check_that_raises_another_error_is_a_spec_problem(tmp_path: Path) -> None:
    """A third-party check_params raising ValueError is listed, not a traceback."""
    from _core_plugins import Gradient

    class Picky(Gradient):
        name = "toy.picky"

        def check_params(self) -> None:
            raise ValueError(f"n_steps={self.n_steps} is odd")

    regs = toy_registries()
    regs.explainers.add(Picky.name, Picky, "toy-dist", "0.0")
    path = write(tmp_path, GOOD.replace("explainers: [toy.gradient]", "explainers: [toy.picky]"))
    spec, problems = validate_spec(path, regs, ())
    assert spec is None
    problem = only(problems, "explainers[0].params")
    assert "Picky refused its parameters: ValueError: n_steps=4 is odd" in str(problem)
