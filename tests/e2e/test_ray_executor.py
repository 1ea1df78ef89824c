"""``harness run --executor ray`` gives the local executor's leaderboard, byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _cli import SMALL_SPEC, install_plugin, run_cli

pytestmark = pytest.mark.e2e

TWO_MODELS = SMALL_SPEC.replace(
    "models: [{name: torchvision.resnet18, params: {epochs: 2}}]",
    "models: [{name: torchvision.resnet18, params: {epochs: 2}},"
    " {name: torchvision.resnet18, label: r18_short, params: {epochs: 1}}]",
)


def test_ray_tasks_write_the_local_leaderboard(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    assert TWO_MODELS != SMALL_SPEC
    spec = tmp_path / "two.yaml"
    spec.write_text(TWO_MODELS)
    local, ray = tmp_path / "local", tmp_path / "ray"  # separate caches: the tasks train again
    assert run_cli("run", str(spec), "-o", str(local), "--no-progress").returncode == 0
    out = run_cli("run", str(spec), "-o", str(ray), "--no-progress", "--executor", "ray")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "12 cells: 12 ok" in out.stdout
    for name in ("leaderboard.md", "leaderboard.csv", "results.json", "leaderboard.html"):
        assert (ray / name).read_bytes() == (local / name).read_bytes(), name


CRASHING_PLUGIN = """
import os
from typing import ClassVar

from torch import nn

from harness import TorchModel, hookimpl


class DiesInTraining(TorchModel):
    name: ClassVar[str] = "crashing.model"

    def _build_module(self, info):
        return nn.Sequential(nn.Flatten(), nn.LazyLinear(info.num_outputs))

    def fit(self, dataset, ids, context):
        os._exit(3)  # a segfault or the OOM killer: the process is gone, no exception


@hookimpl
def harness_models():
    return {"crashing.model": "harness_crashing.plugin:DiesInTraining"}
"""


def test_a_task_whose_process_dies_fails_only_its_own_cells(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    env = install_plugin(tmp_path / "site", "crashing", "0.1", CRASHING_PLUGIN)
    spec = tmp_path / "crash.yaml"
    spec.write_text(
        SMALL_SPEC.replace(
            "models: [{name: torchvision.resnet18, params: {epochs: 2}}]",
            "models: [{name: torchvision.resnet18, params: {epochs: 1}}, crashing.model]",
        )
    )
    out = run_cli(
        "run", str(spec), "-o", str(tmp_path / "out"), "--no-progress", "--executor", "ray",
        env=env,
    )  # fmt: skip
    assert out.returncode == 1, out.stderr[-3000:]
    rows = json.loads((tmp_path / "out" / "results.json").read_text())
    ok = [r for r in rows if r["status"] == "ok"]
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(ok) == 6 and {r["model"] for r in ok} == {"torchvision.resnet18"}
    assert failed and {r["model"] for r in failed} == {"crashing.model"}
    assert all("ray task for model crashing.model on" in r["error"] for r in failed)
    assert "WorkerCrashedError" in failed[0]["error"]
