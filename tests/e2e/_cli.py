"""Run the ``harness`` console script as a user would, in a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def harness_cmd() -> list[str]:
    exe = shutil.which("harness")
    return [exe] if exe else [sys.executable, "-m", "harness.cli"]


def run_cli(
    *args: str, env: Mapping[str, str] | None = None, cwd: Path = ROOT, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    full_env = {
        **os.environ,
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"),
        **(env or {}),
    }
    return subprocess.run(
        [*harness_cmd(), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full_env,
        timeout=timeout,
    )


COMMANDS = ("run", "validate", "ls", "describe", "report", "stability", "check")

SMALL_SPEC = """
benchmark: small
seed: 0
dataset: {name: synthetic.lesions, params: {n: 96, image_size: 32}}
models: [{name: torchvision.resnet18, params: {epochs: 2}}]
explainers: [captum.grad_cam, control.random]
metrics: [classification.accuracy, classification.f1_weighted, localisation.pointing_game, localisation.relevance_mass]
explain: {n: 12}
bootstrap: {n: 200}
"""


def install_plugin(root: Path, name: str, version: str, plugin_source: str) -> dict[str, str]:
    """Install a hand-made third-party distribution under ``root``; return the env that finds it.

    ``name`` is the distribution (``harness-<name>``), its package (``harness_<name>``,
    holding ``plugin.py`` with ``plugin_source``) and its ``harness`` entry point.
    """
    pkg = root / f"harness_{name}"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "plugin.py").write_text(plugin_source)
    info = root / f"harness_{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: harness-{name}\nVersion: {version}\n"
    )
    (info / "entry_points.txt").write_text(f"[harness]\n{name} = harness_{name}.plugin\n")
    return {"PYTHONPATH": str(root)}
