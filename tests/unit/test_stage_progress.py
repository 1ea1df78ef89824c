"""Progress inside long stages: training steps, explained rows, plain status lines off a terminal."""

from __future__ import annotations

import io
import logging
import textwrap
import time
from pathlib import Path
from types import TracebackType
from typing import ClassVar

import pytest
import torch
from _core_plugins import Gradient, TinyCNN, ToyImages, toy_registries
from rich.console import Console

from harness import runner
from harness.chunking import explain_chunks
from harness.contracts import Attribution, Batch
from harness.metrics.faithfulness.pixel_flipping import PixelFlipping
from harness.metrics.sanity.random_logit import RandomLogit
from harness.plugin_manager import registries_with
from harness.progress import NullProgress, RichProgress
from harness.runner import RunOptions, run_benchmark
from harness.substeps import report_substep, reporting

SPEC = textwrap.dedent("""
    benchmark: toy
    dataset: {name: toy.images, params: {n: 16}}
    models: [{name: toy.cnn, params: {epochs: 3, batch_size: 3}}]
    explainers: [toy.gradient]
    metrics: [toy.mass]
    explain: {n: 5, batch_size: 2}
    bootstrap: {n: 10}
""")


class Recording:
    """A progress sink that keeps every call (stands in for the rich bar of a run)."""

    made: ClassVar[list[Recording]] = []

    def __init__(self, total: int) -> None:
        self.total = total
        self.calls: list[tuple[str, str, int, int]] = []
        Recording.made.append(self)

    def __enter__(self) -> Recording:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def stage(self, description: str) -> None:
        self.calls.append(("stage", description, 0, 0))

    def substep(self, done: int, total: int, unit: str = "") -> None:
        self.calls.append(("substep", unit, done, total))

    def advance(self, units: int = 1) -> None:
        self.calls.append(("advance", "", units, 0))

    def steps_of(self, prefix: str) -> list[tuple[str, int, int]]:
        """The (unit, done, total) reported while the stage starting with ``prefix`` ran."""
        out, inside = [], False
        for kind, text, done, total in self.calls:
            if kind == "stage":
                inside = text.startswith(prefix)
            elif kind == "substep" and inside:
                out.append((text, done, total))
        return out


def _increasing_to_total(seen: list[tuple[str, int, int]]) -> None:
    dones = [d for _, d, _ in seen]
    assert dones == sorted(set(dones)), dones
    assert len({t for _, _, t in seen}) == 1 and dones[-1] == seen[-1][2]


def test_a_run_reports_training_steps_and_explained_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tmp_path / "toy.yaml"
    spec.write_text(SPEC)
    Recording.made.clear()
    monkeypatch.setattr(runner, "RichProgress", Recording)
    summary = run_benchmark(RunOptions(spec_path=spec, output=tmp_path / "out"), toy_registries())
    assert summary.failed == 0 and summary.ok == 1
    (sink,) = Recording.made
    training = sink.steps_of("training toy.cnn")
    # 8 training ids in batches of 3: 3 steps per epoch, 3 epochs
    assert training == [("steps", i, 9) for i in range(1, 10)]
    rows = sink.steps_of("explaining")
    assert rows == [("rows", 0, 5), ("rows", 2, 5), ("rows", 4, 5), ("rows", 5, 5)]
    _increasing_to_total(training)
    _increasing_to_total(rows)
    # a second run hits the cache: stages are shown, nothing is recomputed or reported
    run_benchmark(RunOptions(spec_path=spec, output=tmp_path / "out"), toy_registries())
    assert not [c for c in Recording.made[-1].calls if c[0] == "substep"]


def test_a_metric_reports_the_inputs_it_has_evaluated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tmp_path / "toy.yaml"
    spec.write_text(
        SPEC.replace("metrics: [toy.mass]", "metrics: [{name: faithfulness.pixel_flipping, "
        "params: {steps: 8}}, {name: sanity.random_logit, params: {similarity: spearman}}]")
    )  # fmt: skip
    Recording.made.clear()
    monkeypatch.setattr(runner, "RichProgress", Recording)
    plugins = registries_with(
        {
            "datasets": [ToyImages],
            "models": [TinyCNN],
            "explainers": [Gradient],
            "metrics": [PixelFlipping, RandomLogit],
        }
    )
    summary = run_benchmark(RunOptions(spec_path=spec, output=tmp_path / "out"), plugins)
    assert summary.failed == 0 and summary.ok == 2
    (sink,) = Recording.made
    flipped = sink.steps_of("faithfulness.pixel_flipping of")
    # 5 explained rows, each unperturbed and after 8 steps: 45 images through the engine
    assert flipped and flipped[-1] == ("inputs evaluated", 45, 45)
    _increasing_to_total(flipped)
    # the sanity check re-explains the 5 rows for another class
    assert sink.steps_of("sanity.random_logit of")[-1] == ("inputs evaluated", 5, 5)
    with reporting(lambda done, total: pytest.fail("a finished block reports nothing")):
        pass
    report_substep(1, 2)  # outside a block: nothing to report to, and no error


class RunsOutOfMemory(Gradient):
    """Explains at most two rows per call; more raise the CPU allocator's out-of-memory error."""

    def _explain(self, model, batch: Batch, targets: torch.Tensor) -> Attribution:  # type: ignore[no-untyped-def]
        if len(batch) > 2:
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory")
        return super()._explain(model, batch, targets)


def test_explain_chunks_reports_rows_after_each_chunk_without_changing_values() -> None:
    data = ToyImages(n=14)
    model = TinyCNN()
    model.build(data.info())
    batch = data.load([f"s{i}" for i in range(7)])
    targets = batch.labels.clone()
    seen: list[tuple[int, int]] = []
    parts, size = explain_chunks(
        model, RunsOutOfMemory(), batch, targets, 5, progress=lambda d, t: seen.append((d, t))
    )
    assert size == 2 and seen == [(0, 7), (2, 7), (4, 7), (6, 7), (7, 7)]
    quiet, _ = explain_chunks(model, RunsOutOfMemory(), batch, targets, 5)
    assert torch.equal(
        torch.cat([p.pixels for p in parts]),  # type: ignore[misc]
        torch.cat([p.pixels for p in quiet]),  # type: ignore[misc]
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_off_a_terminal_status_lines_are_logged_at_most_every_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, out = FakeClock(), io.StringIO()
    logging.getLogger("harness.progress").setLevel(logging.NOTSET)
    # the CLI's default level is WARNING on the root logger; the bar raises its own logger
    caplog.set_level(logging.WARNING)
    caplog.handler.setLevel(logging.NOTSET)
    with RichProgress(3, console=Console(file=out), log_every=10.0, clock=clock) as bar:
        assert bar.plain
        bar.stage("explaining cnn with lime")
        for done in range(32, 257, 32):
            clock.now += 2.5  # 20 s in all: two lines are due, not eight
            bar.substep(done, 256, unit="rows")
            bar.heartbeat()
        bar.advance()
        bar.stage("deletion_auc of lime")
        clock.now += 12.0
        bar.heartbeat()
        bar.heartbeat()
        bar.stage("short stage")
        clock.now += 1.0
        bar.substep(4, 4)
    assert logging.getLogger("harness.progress").level == logging.NOTSET  # restored
    lines = [r.getMessage() for r in caplog.records if r.name == "harness.progress"]
    assert lines == [
        "[0/3 cells] explaining cnn with lime: 128/256 rows (50%), 10s elapsed, eta 10s",
        "[0/3 cells] explaining cnn with lime: 256/256 rows (100%), 20s elapsed, done",
        "[1/3 cells] deletion_auc of lime: running for 12s",
    ]
    assert all(r.levelno == logging.INFO for r in caplog.records if r.name == "harness.progress")
    assert "short stage" in out.getvalue() and "└" not in out.getvalue()  # only the final bar


def test_off_a_terminal_a_silent_stage_still_logs_that_it_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    caplog.handler.setLevel(logging.NOTSET)
    with RichProgress(1, console=Console(file=io.StringIO()), log_every=0.05) as bar:
        bar.stage("deletion_auc of lime")
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and not caplog.records:
            time.sleep(0.02)
    lines = [r.getMessage() for r in caplog.records if r.name == "harness.progress"]
    assert lines and lines[0].startswith("[0/1 cells] deletion_auc of lime: running for")


def test_on_a_terminal_the_stage_gets_its_own_line_with_done_and_total() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, force_interactive=True, width=120)
    with RichProgress(2, console=console) as bar:
        assert not bar.plain
        bar.stage("training cnn on lesions")
        bar.substep(3, 9, unit="steps")
        bar._progress.refresh()
        shown = out.getvalue()
        assert "training cnn on lesions" in shown and "└ steps" in shown and "3/9" in shown
        bar.stage("deletion_auc of lime")  # reports nothing: a fresh line of unknown length
        (sub,) = [t for t in bar._progress.tasks if t.description.startswith("  └")]
        assert sub.total is None and sub.completed == 0


def test_null_progress_accepts_everything() -> None:
    sink = NullProgress()
    sink.stage("x")
    sink.substep(1, 2, unit="rows")
    sink.advance()
