"""The third-party example plugin installs as a user would install it, is found and conforms."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

PLUGIN = pathlib.Path(__file__).resolve().parents[1] / "plugins" / "harness-thirdparty"

PROBE = """
import json
from harness.plugin_manager import discover
from harness.testing import run_checks_for_name

registries = discover()
results = run_checks_for_name("metrics", "thirdparty.mass_in_mask")
print(json.dumps({
    "datasets": registries.datasets.names(),
    "explainers": registries.explainers.names(),
    "metrics": registries.metrics.names(),
    "distribution": registries.datasets.entry("thirdparty.checkerboard").distribution,
    "statuses": sorted({r.status for r in results}),
    "checks": len(results),
}))
"""


def test_installed_plugin_is_discovered_and_passes_its_checks(tmp_path: pathlib.Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(
        PLUGIN, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(site), str(source)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    assert (site / "harness_thirdparty" / "plugin.py").exists()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
    }
    env.pop("HARNESS_DISABLE_PLUGIN_AUTOLOAD", None)
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert "thirdparty.checkerboard" in found["datasets"]
    assert "thirdparty.gradient_norm" in found["explainers"]
    assert "thirdparty.mass_in_mask" in found["metrics"]
    assert found["distribution"] == "harness-thirdparty"
    assert found["statuses"] == ["passed"] and found["checks"] >= 10
