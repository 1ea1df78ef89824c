"""Forward-free metrics (localisation, complexity): ours vs Quantus 0.6 on the same inputs.

Run with ``pytest -m benchmark tests/benchmarks/test_bench_forward_free.py``.
16 samples at 64x64 and 128x128 (ResNet18 input x gradient attributions, blob
masks). Target (issue 4): at least 10x faster than Quantus. Rows go to
docs/benchmarks.md through the shared ``bench`` fixture; ratios are also logged.

Threads follow the suite (``HARNESS_BENCH_THREADS``, recorded per row). These
metrics are a few element-wise ops and one sort on 16 x 4096..16384 values, and
Quantus runs them in single-threaded NumPy; on a shared, oversubscribed CPU each
barrier of a 2-thread torch op waits for a descheduled worker, turning
microseconds into tens of milliseconds, so measure there with 1 thread.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

import harness

quantus = pytest.importorskip("quantus")

pytestmark = pytest.mark.benchmark
log = logging.getLogger(__name__)


def _q(cls: str, **kw: Any) -> Callable[[], Any]:
    return lambda: getattr(quantus, cls)(disable_warnings=True, **kw)


# (our registered name, our params, Quantus class or None, Quantus kwargs, note)
CASES: list[tuple[str, dict[str, Any], str | None, dict[str, Any], str]] = [
    ("localisation.pointing_game", {}, "PointingGame", {"abs": False, "normalise": False}, ""),
    (
        "localisation.relevance_mass",
        {"positive_only": False},
        "RelevanceMassAccuracy",
        {"abs": False, "normalise": False},
        "signed, as Quantus",
    ),
    (
        "localisation.relevance_rank",
        {"positive_only": False},
        "RelevanceRankAccuracy",
        {"abs": False, "normalise": False},
        "signed, as Quantus",
    ),
    (
        "localisation.attribution_localisation",
        {},
        "AttributionLocalisation",
        {"abs": False, "positive_attributions": True, "normalise": False},
        "",
    ),
    (
        "localisation.top_k_intersection",
        {"k": 1000},
        "TopKIntersection",
        {"k": 1000, "abs": False, "normalise": False},
        "",
    ),
    (
        "localisation.auprc",
        {},
        "AUC",
        {"abs": False, "normalise": False},
        "Quantus AUC is ROC AUC: timing only",
    ),
    ("localisation.iou", {}, None, {}, "no Quantus counterpart"),
    ("localisation.hit_rate", {}, None, {}, "no Quantus counterpart"),
    (
        "complexity.sparseness",
        {},
        "Sparseness",
        {"abs": True, "normalise": False},
        "Quantus adds 1e-7",
    ),
    ("complexity.entropy", {}, "Complexity", {"abs": True, "normalise": False}, ""),
]


@pytest.fixture(scope="module")
def setups(bench: Any, resnet18_setup: Any) -> dict[int, Any]:
    helpers = inspect.getmodule(type(bench))
    big = helpers.build_setup("resnet18-128px", helpers.resnet18_1ch, n=16, size=128)
    return {64: resnet18_setup, 128: big}


@pytest.mark.parametrize("size", [64, 128])
@pytest.mark.parametrize(
    ("name", "params", "qcls", "qkw", "note"), CASES, ids=[c[0] for c in CASES]
)
def test_forward_free_speed(
    bench: Any,
    setups: dict[int, Any],
    size: int,
    name: str,
    params: dict[str, Any],
    qcls: str | None,
    qkw: dict[str, Any],
    note: str,
) -> None:
    helpers = inspect.getmodule(type(bench))
    s = setups[size]
    metric = harness.get_metric(name, **params)

    def ours() -> np.ndarray:
        return metric.score(s.model, s.batch, s.targets, s.attribution).numpy()

    if qcls is None:
        seconds, value = bench.best_of(ours, repeats=15)
        row = helpers.BenchRow(
            setup=s.name,
            metric=name,
            ours_s=seconds,
            quantus_s=None,
            forwards=0,
            floor_s=0.0,
            max_abs_diff=None,
            note=note,
            threads=torch.get_num_threads(),
        )
        bench.record(row)
        log.warning("%s %s: ours %.5f s (no Quantus counterpart)", s.name, name, seconds)
        assert np.all(np.isfinite(value))
        return
    q = _q(qcls, **qkw)()

    def theirs() -> np.ndarray:
        out = q(
            model=s.module,
            x_batch=s.x,
            y_batch=s.y,
            a_batch=s.a.copy(),
            s_batch=s.s,
            channel_first=True,
        )
        return np.asarray(out, dtype=float)

    ours()  # warm up
    cmp = bench.interleaved(ours, theirs, repeats=15)
    comparable = qcls != "AUC"
    diff = helpers.max_abs_diff(cmp.ours, cmp.quantus) if comparable else None
    bench.record(bench.row(s, name, cmp, forwards=0, max_abs_diff=diff, note=note))
    log.warning(
        "%s %s: ours %.5f s, Quantus %.5f s, Quantus/ours %.1fx, max diff %s",
        s.name,
        name,
        cmp.ours_s,
        cmp.quantus_s,
        cmp.speedup,
        diff,
    )
    if comparable:
        assert diff is not None and diff < (1e-3 if "sparseness" in name else 1e-5)
