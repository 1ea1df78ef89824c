"""Faithfulness metrics vs Quantus 0.6.0: time, forward passes, floor and value agreement.

Opt-in: ``pytest -m benchmark tests/benchmarks -p no:randomly``. Each case runs
ours and Quantus alternately (best of N) on the same model and inputs, checks
that the values agree, and records a row for docs/benchmarks.md. Speed
targets are reported, not asserted: the 2 shared cores make timings noisy.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

import harness
from harness.metrics import _engine
from harness.metrics.faithfulness.faithfulness_correlation import correlation_from_subsets

quantus = pytest.importorskip("quantus")
pytestmark = pytest.mark.benchmark

SETUPS = ["resnet18_setup", "small_cnn_setup", "tiny_cnn_setup"]


def _repeats(setup) -> int:
    return 2 if setup.name.startswith("resnet") else 11


def _q(metric: Any, setup, **kwargs: Any) -> Callable[[], np.ndarray]:
    def run() -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = metric(
                model=setup.module, x_batch=setup.x, y_batch=setup.y, a_batch=setup.a,
                device="cpu", **kwargs,
            )  # fmt: skip
        return out if isinstance(out, dict) else np.asarray(out, dtype=float)

    return run


def _ours(name: str, setup, **params: Any) -> Callable[[], Any]:
    metric = harness.get_metric(name, **params)
    return lambda: metric.evaluate(setup.model, setup.batch, setup.targets, setup.attribution)


def _step(setup) -> int:
    hw = setup.x.shape[-1] * setup.x.shape[-2]
    divisors = [k for k in range(1, hw + 1) if hw % k == 0]  # Quantus needs k | HW
    return min(divisors, key=lambda k: abs(hw / k - 64))  # about 64 steps


def _measure(
    bench,
    setup,
    metric: str,
    ours: Callable[[], Any],
    theirs: Callable[[], Any],
    diff: Callable[[Any, Any], float],
    note: str = "",
):
    ours()  # warm-up: frozen graph, imports
    comparison = bench.interleaved(ours, theirs, repeats=_repeats(setup))
    _, images = bench.count_images(ours)
    gap = diff(comparison.ours, comparison.quantus)
    bench.record(bench.row(setup, metric, comparison, images, gap, note))
    return comparison, gap


@pytest.mark.parametrize("setup_name", SETUPS)
def test_pixel_flipping(bench, request, setup_name: str) -> None:
    setup = request.getfixturevalue(setup_name)
    k = _step(setup)
    q = quantus.PixelFlipping(features_in_step=k, normalise=False, disable_warnings=True)
    _, gap = _measure(
        bench, setup, "faithfulness.pixel_flipping",
        _ours("faithfulness.pixel_flipping", setup, pixels_per_step=k), _q(q, setup),
        lambda o, t: float(np.abs(o.curves["probability"].numpy() - t).max()),
        note=f"{k} px/step; diff = curve",
    )  # fmt: skip
    assert gap < 1e-5


@pytest.mark.parametrize("setup_name", SETUPS)
def test_region_perturbation(bench, request, setup_name: str) -> None:
    setup = request.getfixturevalue(setup_name)
    patch = 8 if setup.x.shape[-1] >= 64 else 4
    regions = (setup.x.shape[-1] // patch) ** 2
    q = quantus.RegionPerturbation(
        patch_size=patch, regions_evaluation=regions, normalise=False, disable_warnings=True
    )
    _, gap = _measure(
        bench, setup, "faithfulness.region_perturbation",
        _ours("faithfulness.region_perturbation", setup, patch_size=patch, regions=regions),
        _q(q, setup),
        lambda o, t: float(np.abs(o.curves["drop"].numpy() - t).max()),
        note=f"patch {patch}, {regions} regions; diff = curve",
    )  # fmt: skip
    assert gap < 1e-5


@pytest.mark.parametrize("setup_name", SETUPS)
def test_faithfulness_correlation(bench, request, setup_name: str) -> None:
    setup = request.getfixturevalue(setup_name)
    hw = setup.x.shape[-1] * setup.x.shape[-2]
    size = 224 if hw >= 4096 else 32
    runs = 100
    q = quantus.FaithfulnessCorrelation(
        nr_runs=runs,
        subset_size=size,
        normalise=False,
        return_aggregate=False,
        disable_warnings=True,
    )

    def same_draws(ours: Any, theirs: np.ndarray) -> float:
        # Replay the draws Quantus made after np.random.seed(0) (bench.interleaved's reset).
        np.random.seed(0)
        subsets = []
        for _ in range(runs):
            subsets.append(np.stack([np.random.choice(hw, size, replace=False) for _ in setup.y]))
            np.random.uniform(size=len(setup.y))
        replay = torch.as_tensor(np.stack(subsets, axis=1))
        corr, _, _ = correlation_from_subsets(
            setup.model, setup.batch, setup.targets, setup.attribution.pixels, replay,
            baseline="black", output="logit",
        )  # fmt: skip
        return float(np.abs(corr.numpy() - theirs).max())

    _, gap = _measure(
        bench, setup, "faithfulness.correlation",
        _ours("faithfulness.correlation", setup, runs=runs, subset_size=size), _q(q, setup),
        same_draws, note=f"{runs} runs x {size} px; diff = same draws",
    )  # fmt: skip
    assert gap < 1e-4


def _insert_input(x: np.ndarray) -> Callable[..., np.ndarray]:
    flat = x.reshape(len(x), -1)

    def perturb(arr: np.ndarray, indices: np.ndarray, **_: Any) -> np.ndarray:
        out = arr.copy()
        rows = np.arange(len(arr))[:, None]
        out[rows, indices] = flat[rows, indices]
        return out

    return perturb


@pytest.mark.parametrize("setup_name", SETUPS)
def test_monotonicity(bench, request, setup_name: str) -> None:
    setup = request.getfixturevalue(setup_name)
    k = _step(setup)
    q = quantus.Monotonicity(
        features_in_step=k,
        normalise=False,
        disable_warnings=True,
        perturb_func=_insert_input(setup.x),
    )
    _, gap = _measure(
        bench, setup, "faithfulness.monotonicity",
        _ours("faithfulness.monotonicity", setup, pixels_per_step=k), _q(q, setup),
        lambda o, t: float(np.abs(o.values.numpy() - t).max()),
        note=f"{k} px/step; Quantus given the paper's insertion (its default never inserts)",
    )  # fmt: skip
    assert gap == 0.0


@pytest.mark.parametrize("setup_name", SETUPS)
def test_road(bench, request, setup_name: str) -> None:
    setup = request.getfixturevalue(setup_name)
    percentages = list(range(1, 100, 2))
    q = quantus.ROAD(percentages=percentages, noise=0.0, normalise=False, disable_warnings=True)

    def per_percentage(ours: Any, theirs: dict[int, float]) -> float:
        accuracy = ours.curves["correct"].double().mean(dim=0).numpy()
        return float(np.abs(accuracy - np.array([theirs[p] for p in percentages])).max())

    _, gap = _measure(
        bench, setup, "faithfulness.road",
        _ours("faithfulness.road", setup, percentages=percentages, noise=0.0), _q(q, setup),
        per_percentage, note="50 percentages, noise 0; diff = accuracy per percentage",
    )  # fmt: skip
    assert gap <= 1 / len(setup.y)  # at most one flipped prediction per percentage


@pytest.mark.parametrize("setup_name", SETUPS)
def test_deletion_insertion_and_sharing(bench, request, setup_name: str) -> None:
    """No Quantus counterpart: ours against the floor, and the pass shared with pixel flipping."""
    setup = request.getfixturevalue(setup_name)
    k = _step(setup)
    for name in ("faithfulness.deletion_auc", "faithfulness.insertion_auc"):
        run = _ours(name, setup, pixels_per_step=k)
        run()
        seconds, _ = bench.best_of(run, _repeats(setup), before=_engine.cache_clear)
        _, images = bench.count_images(run)
        comparison = type("C", (), {"ours_s": seconds, "quantus_s": None})()
        bench.record(
            bench.row(setup, name, comparison, images, None, f"{k} px/step; no Quantus metric")
        )
    flip = _ours("faithfulness.pixel_flipping", setup, pixels_per_step=k, baseline="zero")
    delete = _ours("faithfulness.deletion_auc", setup, pixels_per_step=k, baseline="zero")

    def both() -> None:
        flip()
        delete()

    seconds, _ = bench.best_of(both, _repeats(setup), before=_engine.cache_clear)
    _, images = bench.count_images(both)
    comparison = type("C", (), {"ours_s": seconds, "quantus_s": None})()
    bench.record(
        bench.row(setup, "pixel_flipping + deletion_auc", comparison, images, None,
                  "same schedule: one set of forward passes")
    )  # fmt: skip
    hw = setup.x.shape[-1] * setup.x.shape[-2]
    assert images == len(setup.y) * (hw // k + 1)
