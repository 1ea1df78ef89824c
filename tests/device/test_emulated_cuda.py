"""Device handling on an emulated CUDA device: nothing a GPU would refuse, the CPU's values.

There is no GPU here. Each scenario of ``emulated_cuda_runs.py`` runs in a
subprocess on the emulated device of ``fake_cuda.py`` (CPU arithmetic, tensors
that say ``cuda:0``, every mix of devices, ``.numpy()`` of a CUDA tensor or
generator of the wrong device recorded), so the code's CUDA branches run and
every site a real GPU would refuse is named. Where the scenario's values do
not depend on the device by design, they must equal a CPU run's; a benchmark
run's do (a GPU's checkpoint has its own stage key and seed), so the two small
benchmarks only have to finish every cell on the emulated device.
Not covered: GPU numerics (TF32, cuDNN), memory, Ray workers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
COMPARED = ["image_metrics", "explainers", "token_metrics", "classification"]
BENCHMARKS = ["pipeline_multiclass", "pipeline_multilabel"]


def run(scenario: str, device: str) -> dict[str, Any]:
    """Run one scenario in a subprocess; return its JSON result."""
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    proc = subprocess.run(
        [sys.executable, str(HERE / "emulated_cuda_runs.py"), scenario, device],
        capture_output=True, text=True, cwd=HERE, env=env, timeout=600,
    )  # fmt: skip
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0 and lines, f"{scenario} on {device} crashed:\n{proc.stderr[-4000:]}"
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def test_the_emulator_records_what_a_gpu_would_refuse() -> None:
    result = run("selftest", "cuda")
    assert result["devices"] == {"moved": "cuda:0"}
    kinds = sorted(v.split(": ")[0].split(" x ", 1)[1] for v in result["violations"])
    assert kinds == [
        ".numpy() on CUDA",
        "generator on cpu for a cuda op",
        "mixed cpu/cuda",
        "mixed cpu/cuda",
    ]
    planted = "".join(result["violations"])
    assert "x + torch.ones(4)" in planted and "index_select" in planted
    assert "fine" not in planted  # a 0-dim CPU tensor, a CPU index, a CUDA generator


@pytest.mark.parametrize("scenario", COMPARED)
def test_scenario_on_emulated_cuda_matches_the_cpu(scenario: str) -> None:
    cuda, cpu = run(scenario, "cuda"), run(scenario, "cpu")
    assert cuda["violations"] == []
    assert cuda["errors"] == {} and cpu["errors"] == {}
    assert cuda["cuda_ops"]  # the inputs did reach the code on the emulated device
    assert cpu["cuda_ops"] == {}
    assert sorted(cuda["values"]) == sorted(cpu["values"]) and cuda["values"]
    # float32 logits: one side may run the engine's TorchScript graph where the other runs
    # eager (a trace of emulated tensors need not verify), about 1e-7 apart
    for name, values in cuda["values"].items():
        np.testing.assert_allclose(
            values, cpu["values"][name], rtol=1e-5, atol=1e-6, equal_nan=True, err_msg=name
        )


@pytest.mark.parametrize("scenario", BENCHMARKS)
def test_benchmark_on_emulated_cuda_finishes_every_cell(scenario: str) -> None:
    result = run(scenario, "cuda")
    assert result["violations"] == []
    assert result["errors"] == {}
    ok, skipped, failed = result["values"]["cells"]
    assert ok > 50 and failed == 0
    assert result["cuda_ops"].get("conv2d", 0) > 0
