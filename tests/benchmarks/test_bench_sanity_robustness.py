"""Sanity (MPRT, random logit) and robustness (sensitivity) metrics: ours vs Quantus 0.6.

Run with ``pytest -m benchmark tests/benchmarks/test_bench_sanity_robustness.py``.
Both sides re-explain with the same input x gradient explainer (ours through the
harness contract, Quantus through the shared ``quantus_explain``), on the
shared setups: ResNet18 at 64x64 and a LeNet-sized CNN at 28x28 / 32x32, 16
samples, with the suite's ``HARNESS_BENCH_THREADS`` torch threads (recorded
per row; use 1 on a shared, oversubscribed CPU). ``forwards`` counts the
explained images (each is a forward and a backward pass), so "ours/floor"
compares with forward passes only; the note adds the explain-only floor: the
explainer alone on the same number of images, at our chunk size (16 rows per
call for the randomisation tests, ``explain_chunk`` for sensitivity), and
Quantus's time over it: the largest speed-up any code running the same
explanations could reach.
Values: MPRT and random logit use the same weights / classes as Quantus, so the
Spearman curves must agree; sensitivity draws differ between torch and NumPy,
so only the timing is compared here (tests/metrics/test_robustness.py checks
equality given the same draws).
"""

from __future__ import annotations

import copy
import inspect
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

import harness
from harness.chunking import explain_chunk

quantus = pytest.importorskip("quantus")

pytestmark = pytest.mark.benchmark
log = logging.getLogger(__name__)

SAMPLES = 16  # sensitivity draws per row, both sides


def _layers(setup: Any) -> int:
    return len(setup.model.randomisable_layers())


def _case(
    name: str, setup: Any, helpers: Any
) -> tuple[Any, Callable[[], Any], Callable[[Any], np.ndarray], int, str]:
    """Return (our metric, Quantus call, our values from Scores, forwards, note)."""
    spearman = quantus.similarity_func.correlation_spearman
    n = len(setup.batch)
    common = {"explain_func": helpers.quantus_explain, "channel_first": True}
    if name in ("sanity.cascading_randomisation", "sanity.independent_randomisation"):
        order = "top_down" if name.startswith("sanity.cascading") else "independent"
        q = quantus.MPRT(
            similarity_func=spearman,
            layer_order=order,
            seed=42,
            abs=True,
            normalise=False,
            disable_warnings=True,
        )

        def theirs() -> Any:
            out = q(
                model=copy.deepcopy(setup.module),
                x_batch=setup.x,
                y_batch=setup.y,
                a_batch=setup.a.copy(),
                **common,
            )
            curves = np.stack(
                [np.asarray(v, float) for k, v in out.items() if k != "original"], axis=1
            )
            return curves if order == "top_down" else curves[:, ::-1]

        metric = harness.get_metric(name)
        return (
            metric,
            theirs,
            lambda s: s.curves["spearman"].numpy(),
            _layers(setup) * n,
            "Spearman curves",
        )
    if name == "sanity.random_logit":
        q = quantus.RandomLogit(
            similarity_func=spearman,
            num_classes=2,
            seed=42,
            abs=False,
            normalise=False,
            disable_warnings=True,
        )

        def theirs() -> Any:
            return np.asarray(
                q(
                    model=setup.module,
                    x_batch=setup.x,
                    y_batch=setup.y,
                    a_batch=setup.a.copy(),
                    **common,
                ),
                float,
            )

        metric = harness.get_metric(name, similarity="spearman")
        return metric, theirs, lambda s: s.values.numpy(), n, "similarity=spearman both"
    cls = {
        "robustness.max_sensitivity": "MaxSensitivity",
        "robustness.avg_sensitivity": "AvgSensitivity",
    }[name]
    q = getattr(quantus, cls)(
        nr_samples=SAMPLES, lower_bound=0.2, abs=False, normalise=False, disable_warnings=True
    )

    def theirs() -> Any:
        return np.asarray(
            q(
                model=setup.module,
                x_batch=setup.x,
                y_batch=setup.y,
                a_batch=setup.a.copy(),
                **common,
            ),
            float,
        )

    metric = harness.get_metric(name, n_samples=SAMPLES)
    return (
        metric,
        theirs,
        lambda s: s.values.numpy(),
        SAMPLES * n,
        f"{SAMPLES} draws; values not compared",
    )


def _explain_floor(bench: Any, setup: Any, images: int, chunk: int) -> float:
    """Best-of-3 seconds for the explainer alone on ``images`` copies of the batch rows."""
    n = len(setup.batch)
    rows = torch.arange(n).repeat(-(-images // n))[:images]
    batch, targets = setup.batch.index(rows), setup.targets[rows]

    def run() -> None:
        for start in range(0, images, chunk):
            part = torch.arange(start, min(start + chunk, images))
            setup.explainer.explain(setup.model, batch.index(part), targets[part])

    run()
    return float(bench.best_of(run, 3)[0])


NAMES = [
    "sanity.cascading_randomisation",
    "sanity.independent_randomisation",
    "sanity.random_logit",
    "robustness.max_sensitivity",
    "robustness.avg_sensitivity",
]


@pytest.mark.parametrize(
    "setup_name", ["resnet18_setup", "small_cnn_setup", "small_cnn32_setup", "tiny_cnn_setup"]
)
@pytest.mark.parametrize("name", NAMES)
def test_explainer_bound_speed(
    bench: Any, request: pytest.FixtureRequest, setup_name: str, name: str
) -> None:
    helpers = inspect.getmodule(type(bench))
    setup = request.getfixturevalue(setup_name)
    metric, theirs, values, forwards, note = _case(name, setup, helpers)

    def ours() -> Any:
        return metric.evaluate(
            setup.model, setup.batch, setup.targets, setup.attribution, explainer=setup.explainer
        )

    chunk = len(setup.batch)
    if name.startswith("robustness"):
        images = setup.batch.images
        chunk = explain_chunk(images.device, tuple(images.shape[1:]), forwards)
    floor_s = _explain_floor(bench, setup, forwards, chunk)
    repeats = 2 if setup_name == "resnet18_setup" else 11
    ours()  # warm up
    cmp = bench.interleaved(ours, theirs, repeats=repeats)
    comparable = not name.startswith("robustness")
    diff = helpers.max_abs_diff(values(cmp.ours), cmp.quantus) if comparable else None
    cmp.ours = values(cmp.ours)
    note = (
        f"{note}; explain-only floor {floor_s:.3f} s, ours {cmp.ours_s / floor_s:.2f}x it, "
        f"Quantus {cmp.quantus_s / floor_s:.1f}x it"
    )
    row = bench.record(bench.row(setup, name, cmp, forwards=forwards, max_abs_diff=diff, note=note))
    log.warning(
        "%s %s: ours %.3f s, Quantus %.3f s, Quantus/ours %.2fx, max diff %s",
        row.setup,
        name,
        cmp.ours_s,
        cmp.quantus_s,
        cmp.speedup,
        diff,
    )
    if comparable:
        assert diff is not None and diff < 1e-4
