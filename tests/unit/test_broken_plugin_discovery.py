"""A third-party plugin that fails to import, or whose hook raises, is left out with a warning.

The plugins are installed as a user's environment would hold them (a dist-info with
entry points on the path) and the CLI runs in a subprocess, as a user runs it.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

HOOK = """
from harness import hookimpl

@hookimpl
def harness_explainers():
    raise RuntimeError("licence server unreachable")

@hookimpl
def harness_metrics():
    return {"broken.still_listed": "broken_hook_plugin:Nothing"}
"""


def _install(site: pathlib.Path) -> None:
    """Write a distribution 'broken-plugins' with two entry points: one missing, one raising."""
    info = site / "broken_plugins-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugins\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[harness]\nmissingdep = broken_import_plugin\nraisinghook = broken_hook_plugin\n"
    )
    (site / "broken_import_plugin.py").write_text("import definitely_not_installed_xyz\n")
    (site / "broken_hook_plugin.py").write_text(HOOK)


def _harness(site: pathlib.Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
    }
    env.pop("HARNESS_DISABLE_PLUGIN_AUTOLOAD", None)
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_broken_plugins_are_named_and_the_others_stay_usable(tmp_path: pathlib.Path) -> None:
    site = tmp_path / "site"
    _install(site)
    out = _harness(site, "ls", "explainers")
    assert out.returncode == 0, out.stderr
    assert "captum.grad_cam" in out.stdout  # the built-in plugins are still listed
    assert (
        "plugin 'missingdep' (broken-plugins 0.1) is left out: ModuleNotFoundError: "
        "No module named 'definitely_not_installed_xyz' - fix or uninstall it, or block it "
        "with -p no:missingdep"
    ) in out.stderr
    assert (
        "plugin 'raisinghook' (broken-plugins 0.1): its harness_explainers hook raised "
        "RuntimeError: licence server unreachable; its explainers are left out"
    ) in out.stderr
    metrics = _harness(site, "ls", "metrics")
    assert "broken.still_listed" in metrics.stdout  # its other hooks still register


def test_blocking_a_broken_plugin_silences_it(tmp_path: pathlib.Path) -> None:
    site = tmp_path / "site"
    _install(site)
    out = _harness(site, "ls", "datasets", "-p", "no:missingdep", "-p", "no:raisinghook")
    assert out.returncode == 0, out.stderr
    assert "left out" not in out.stderr
    assert "synthetic.lesions" in out.stdout


BAD_SIGNATURE = """
from harness import hookimpl

@hookimpl
def harness_datasets():
    return {"badsig.dataset": "badsig_plugin:Nothing"}

@hookimpl
def harness_run_finished(summary, extra):
    pass
"""

MISSPELT = """
from harness import hookimpl

@hookimpl
def harness_modles():
    return {}
"""


def test_invalid_hooks_leave_the_whole_plugin_out(tmp_path: pathlib.Path) -> None:
    site = tmp_path / "site"
    info = site / "hook_mistakes-0.2.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hook-mistakes\nVersion: 0.2\n")
    (info / "entry_points.txt").write_text(
        "[harness]\nbadsig = badsig_plugin\nmisspelt = misspelt_plugin\n"
    )
    (site / "badsig_plugin.py").write_text(BAD_SIGNATURE)
    (site / "misspelt_plugin.py").write_text(MISSPELT)
    out = _harness(site, "ls", "datasets")
    assert out.returncode == 0, out.stderr
    assert "synthetic.lesions" in out.stdout
    assert "badsig.dataset" not in out.stdout  # its valid hook went out with it
    assert "plugin 'badsig' (hook-mistakes 0.2) is left out: PluginValidationError" in out.stderr
    assert (
        "plugin 'misspelt' (hook-mistakes 0.2) is left out: PluginValidationError: "
        "unknown hook 'harness_modles'"
    ) in out.stderr
