"""A run's re-explanations repeat the attribution's random draws (common random numbers).

``harness run`` with stochastic explainers (LIME, SmoothGrad) and max-sensitivity
at a radius too small to move a float32 pixel by more than a rounding step: an
explainer drawing the same samples as when it made the attribution gives
the same map again (sensitivity about 0), one drawing new samples would
report its own sampling noise as sensitivity (LIME: 1.2 here without them).
"""

from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path

import pytest
from _cli import run_cli

pytestmark = pytest.mark.e2e


def test_sensitivity_of_stochastic_explainers_is_their_inputs_not_their_draws(
    tmp_path: Path,
) -> None:
    spec = tmp_path / "draws.yaml"
    spec.write_text(
        textwrap.dedent("""
        benchmark: draws
        seed: 0
        dataset: {name: synthetic.lesions, params: {n: 40, image_size: 32}}
        models: [{name: torchvision.resnet18, params: {epochs: 0}}]
        explainers:
          - {name: captum.lime, params: {n_samples: 32, segmentation: grid, grid_size: 4}}
          - {name: captum.smoothgrad, params: {nt_samples: 4}}
        metrics:
          - {name: robustness.max_sensitivity, params: {radius: 1.0e-9, n_samples: 2}}
        explain: {split: test, n: 6, targets: label}
        bootstrap: {n: 50}
        """)
    )
    proc = run_cli("run", str(spec), "-o", str(tmp_path / "out"), "--no-progress")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    with sqlite3.connect(tmp_path / "out" / "results.sqlite") as db:
        rows = db.execute("SELECT explainer, status, value, n FROM results").fetchall()
    assert {e for e, *_ in rows} == {"captum.lime", "captum.smoothgrad"}
    for explainer, status, value, n in rows:
        assert status == "ok" and n == 6, (explainer, status)
        assert 0 <= value < 1e-4, (explainer, value)
