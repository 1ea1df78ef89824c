"""The ``harness`` command on bad input: one clear line and exit 2, never a traceback.

Run in-process through :func:`harness.cli.main`; each case stops before any
training, so the whole file takes a few seconds.
"""

from __future__ import annotations

import argparse
import logging
import textwrap
from pathlib import Path

import pytest
import torch

import harness.cli.validate
from harness.cli import main

SPEC = """
benchmark: bad_input
seed: 0
device: cpu
dataset: {name: synthetic.lesions, params: {n: 48, image_size: 32}}
models: [{name: torchvision.resnet18, params: {epochs: 1}}]
explainers: [captum.grad_cam, control.random]
metrics: [classification.accuracy, localisation.pointing_game]
explain: {split: test, n: 4, targets: label}
bootstrap: {n: 50}
"""


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(SPEC))
    return path


def test_output_under_a_file_is_one_usage_error(
    spec: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = spec / "out"
    assert main(["run", str(spec), "-o", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --output: ") and str(out) in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_output_that_cannot_be_created_is_one_usage_error(
    spec: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(spec), "-o", "/proc/harness_no_such_out", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "error: --output: /proc/harness_no_such_out: cannot create the folder" in err


def test_cache_dir_under_a_file_fails_up_front(
    spec: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = spec / "cache"
    out = tmp_path / "out"
    code = main(["run", str(spec), "-o", str(out), "--cache-dir", str(cache), "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --cache-dir: ") and str(cache) in err
    assert not (out / "results.sqlite").exists()  # nothing ran


def test_bad_device_option_has_no_doubled_prefix(
    spec: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", str(spec), "-o", str(tmp_path / "o"), "--device", "cuda:x"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --device: 'cuda:x'") and "device: device:" not in err


@pytest.mark.skipif(torch.cuda.device_count() > 7, reason="the machine has a cuda:7")
def test_unavailable_spec_device_names_the_spec_file(
    spec: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec.write_text(spec.read_text().replace("device: cpu", "device: cuda:7"))
    assert main(["run", str(spec), "-o", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {spec}: device: 'cuda:7'") and "device: device:" not in err


def test_malformed_spec_device_is_a_validate_problem(
    spec: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec.write_text(spec.read_text().replace("device: cpu", 'device: "cuda:x"'))
    assert main(["validate", str(spec)]) == 2
    err = capsys.readouterr().err
    assert f"{spec}:4: device: expected one of" in err


def test_non_utf8_spec_and_bad_override_are_reported_not_raised(
    spec: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad8.yaml"
    bad.write_bytes(b"benchmark: x\n\xff\xfe bad\n")
    assert main(["validate", str(bad)]) == 2
    assert "not valid UTF-8" in capsys.readouterr().err
    assert main(["validate", str(spec), "--set", "models=[{name: x"]) == 2
    assert "--set models=[{name: x: invalid YAML value" in capsys.readouterr().err


def test_keyboard_interrupt_is_one_line_and_exit_130(
    spec: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(args: argparse.Namespace) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(harness.cli.validate, "execute", interrupted)
    try:
        code = main(["validate", str(spec)])
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped harness.cli.main")
    assert code == 130
    err = capsys.readouterr().err
    assert err.startswith("interrupted: ") and len(err.splitlines()) == 1
    assert "rerun the same command to resume" in err


def test_plugin_refusals_are_listed_by_validate(
    spec: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = spec.read_text().replace(
        "metrics: [classification.accuracy, localisation.pointing_game]",
        "metrics: [classification.accuracy, {name: complexity.entropy, params: {over: words}, "
        "label: e}, {name: sanity.random_logit, params: {over: tokens}}]",
    )
    spec.write_text(text)
    assert main(["validate", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "2 problem(s)" in err
    assert f"{spec}:8: metrics[1].params: metric 'complexity.entropy'" in err
    assert f"{spec}:8: metrics[2].params: sanity.random_logit" in err


def test_unknown_or_malformed_plugin_blocks_are_warned(
    spec: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="harness.cli._spec_args"):
        main(["validate", str(spec), "-p", "no:nonexistent", "-p", "builtins"])
    messages = [r.getMessage() for r in caplog.records if r.name == "harness.cli._spec_args"]
    assert any("'nonexistent'" in m and "entry-point name" in m for m in messages)
    assert any(m.startswith("-p builtins:") and "no:NAME" in m for m in messages)


def test_known_plugin_block_is_not_warned(spec: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="harness.cli._spec_args"):
        main(["validate", str(spec), "-p", "no:harness.metrics"])
    assert not [r for r in caplog.records if r.name == "harness.cli._spec_args"]


def test_check_of_unknown_name_suggests_close_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "captum.grad_cm"]) == 2
    err = capsys.readouterr().err
    assert "Did you mean: captum.grad_cam" in err
    assert main(["check", "foo.bar"]) == 2
    assert "Available: " in capsys.readouterr().err
