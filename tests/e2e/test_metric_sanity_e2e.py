"""Sanity of the localisation metrics: the ground-truth mask scores best, random worst.

Runs ``harness run`` on ``synthetic.lesions`` (exact lesion masks) with the
mask and random controls and every registered localisation metric at its
defaults, then reads the stored results. The Sobel control is a third
explainer to rank against: the mask must beat both, random must not beat Sobel.
The model stays untrained (``epochs: 0``): none of these explainers or metrics runs it.
"""

from __future__ import annotations

import json
import sqlite3
import textwrap
from pathlib import Path

import pytest
from _cli import run_cli

from harness.contracts import MetricKind, Modality
from harness.plugin_manager import get_registries

pytestmark = pytest.mark.e2e

EXPLAINERS = ("control.mask", "control.sobel", "control.random")


def localisation_metrics() -> list[str]:
    """Every registered localisation metric of images, from the registry itself.

    (The token rationale metric scores a rationale used as the attribution 1 in
    ``tests/metrics/test_eraser.py``.)
    """
    metrics = get_registries().metrics
    return sorted(
        n
        for n in metrics.names()
        if metrics.get(n).tags.kind is MetricKind.LOCALISATION
        and Modality.IMAGE in metrics.get(n).tags.modalities
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("metric-sanity")
    spec = out / "sanity.yaml"
    spec.write_text(
        textwrap.dedent(f"""
        benchmark: metric-sanity
        seed: 0
        dataset: {{name: synthetic.lesions, params: {{n: 80, image_size: 64}}}}
        models: [{{name: torchvision.resnet18, params: {{epochs: 0}}}}]
        explainers: [{", ".join(EXPLAINERS)}]
        metrics: [{", ".join(localisation_metrics())}]
        explain: {{split: test, n: 32, targets: positive}}
        bootstrap: {{n: 100}}
        """)
    )
    proc = run_cli("run", str(spec), "-o", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return out


def test_every_localisation_metric_is_covered() -> None:
    names = localisation_metrics()
    assert len(names) >= 8 and "localisation.pointing_game" in names


def test_mask_scores_best_and_random_worst_on_every_localisation_metric(run: Path) -> None:
    with sqlite3.connect(run / "results.sqlite") as db:
        rows = db.execute(
            "SELECT explainer, metric, status, value, higher_is_better, n FROM results"
        ).fetchall()
    cells = {(e, m): (status, value, hib, n) for e, m, status, value, hib, n in rows}
    for metric in localisation_metrics():
        scores = {}
        for explainer in EXPLAINERS:
            status, value, hib, n = cells[(explainer, metric)]
            assert status == "ok" and n > 0, (explainer, metric, status)
            scores[explainer] = value if hib else -value  # higher is better from here on
        mask, sobel, rand = (scores[e] for e in EXPLAINERS)
        assert mask > sobel and mask > rand, (metric, scores)
        assert rand <= sobel, (metric, scores)  # worst, possibly tied (both miss every time)


def test_no_metric_is_flagged_in_either_report(run: Path) -> None:
    records = json.loads((run / "results.json").read_text())
    assert {r["metric"] for r in records} == set(localisation_metrics())
    md = (run / "leaderboard.md").read_text()
    page = (run / "leaderboard.html").read_text()
    assert "cannot separate" not in md and "cannot separate" not in page
