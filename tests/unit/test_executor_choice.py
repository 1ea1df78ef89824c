"""What a distributed executor relies on, checked in-process (the Ray run is in tests/e2e)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import pytest
from _core_plugins import toy_registries

from harness import executors
from harness.errors import PluginError
from harness.executors.remote import RemoteRun, replay, run_group_here
from harness.planner import Cell
from harness.runner import RunOptions, run_benchmark

SPEC = textwrap.dedent("""
    benchmark: remote
    seed: 0
    dataset: {name: synthetic.lesions, params: {n: 48, image_size: 32}}
    models: [{name: torchvision.resnet18, params: {epochs: 1}}]
    explainers: [captum.grad_cam, captum.smoothgrad]
    metrics: [classification.accuracy, localisation.pointing_game]
    explain: {n: 6}
    bootstrap: {n: 50}
""")


class EditsTheSpecThenRunsRemotely:
    """Runs each group as a worker would (rebuilt plugins, recorded results), after the
    spec file on disk was changed: the worker must use the spec the driver planned."""

    name = "edits-then-remote"

    def __init__(self, spec_path: Path) -> None:
        self.spec_path = spec_path

    def run(
        self, groups: Sequence[tuple[str, str, Sequence[Cell]]], ctx, remote: RemoteRun
    ) -> None:
        self.spec_path.write_text(SPEC.replace("explain: {n: 6}", "explain: {n: 3}"))
        for dataset, model, cells in groups:
            replay(ctx, run_group_here(remote, dataset, model, cells))


def test_a_group_run_as_a_worker_writes_the_local_leaderboard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tmp_path / "remote.yaml"
    spec.write_text(SPEC)
    local = run_benchmark(RunOptions(spec_path=spec, output=tmp_path / "local", progress=False))
    assert local.ok == 3
    monkeypatch.setitem(
        executors.EXECUTORS, "edits-then-remote", lambda: EditsTheSpecThenRunsRemotely(spec)
    )
    options = RunOptions(
        spec_path=spec, output=tmp_path / "remote", executor="edits-then-remote", progress=False
    )
    assert run_benchmark(options).ok == 3
    for name in ("leaderboard.md", "leaderboard.csv", "results.json", "leaderboard.html"):
        assert (tmp_path / "remote" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()


def test_registries_given_in_process_are_refused_for_a_distributed_executor(
    tmp_path: Path,
) -> None:
    spec = tmp_path / "toy.yaml"
    spec.write_text("benchmark: toy\n")
    options = RunOptions(spec_path=spec, output=tmp_path / "out", executor="ray")
    with pytest.raises(PluginError, match="executor 'ray': its workers find plugins through"):
        run_benchmark(options, toy_registries())
    assert not (tmp_path / "out").exists()
