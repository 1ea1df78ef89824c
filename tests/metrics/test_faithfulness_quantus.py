"""Faithfulness metrics against Quantus 0.6.0 on the same model and inputs.

Tolerances: curves of softmax probabilities agree to 1e-6 (float32 forwards in
different batch compositions); correlations to 1e-5. Attributions are input x
gradient, which has no ties, so both libraries flip pixels in the same order
(Quantus uses NumPy's unstable argsort, we use a stable one; see PEERS.md).
Quantus is called with ``normalise=False``: its normalisation divides by the
batch maximum and only rescales, but float rounding could create ties.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.stats
import torch

import harness
from harness.draws import row_seeds
from harness.metrics import _engine
from harness.metrics.faithfulness._imputation import hashed_normal
from harness.metrics.faithfulness.faithfulness_correlation import (
    correlation_from_subsets,
    sample_subsets,
)

quantus = pytest.importorskip("quantus")

PROB_TOL = 1e-6


def _quantus(metric: object, setup, **kwargs: object) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = metric(
            model=setup.module, x_batch=setup.x, y_batch=setup.y, a_batch=setup.a,
            device="cpu", **kwargs,
        )  # fmt: skip
    return np.asarray(out, dtype=float)


def _probs(setup) -> np.ndarray:
    with torch.no_grad():
        p = torch.softmax(setup.module(setup.batch.images), dim=1)
    return p[torch.arange(len(p)), setup.targets].double().numpy()


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    _engine.cache_clear()


def test_pixel_flipping_matches_quantus_curve_and_aopc(toy) -> None:
    q = quantus.PixelFlipping(features_in_step=4, normalise=False, disable_warnings=True)
    curve_q = _quantus(q, toy)
    ours = harness.get_metric("faithfulness.pixel_flipping", pixels_per_step=4)
    scores = ours.evaluate(toy.model, toy.batch, toy.targets, toy.attribution)
    curve = scores.curves["probability"].double().numpy()
    assert curve.shape == curve_q.shape == (8, 64)
    np.testing.assert_allclose(curve, curve_q, atol=PROB_TOL, rtol=0)
    aopc_q = (_probs(toy)[:, None] - curve_q).sum(axis=1) / (curve_q.shape[1] + 1)
    np.testing.assert_allclose(scores.values.numpy(), aopc_q, atol=PROB_TOL, rtol=0)
    auc_q = np.trapezoid(curve_q, axis=1)
    np.testing.assert_allclose(ours.quantus_auc(scores).numpy(), auc_q, atol=1e-5)


@pytest.mark.parametrize(
    ("order", "size", "patch"), [("morf", 16, 4), ("lerf", 16, 4), ("morf", 18, 4)]
)
def test_region_perturbation_matches_quantus(
    toy_factory, order: str, size: int, patch: int
) -> None:
    setup = toy_factory(n=6, size=size, seed=3)  # size 18: padded to 20, split 1 / 1 like Quantus
    q = quantus.RegionPerturbation(
        patch_size=patch, order=order, regions_evaluation=10, normalise=False, disable_warnings=True
    )
    drops_q = _quantus(q, setup)
    ours = harness.get_metric(
        "faithfulness.region_perturbation", patch_size=patch, order=order, regions=10
    )
    scores = ours.evaluate(setup.model, setup.batch, setup.targets, setup.attribution)
    drops = scores.curves["drop"].double().numpy()
    np.testing.assert_allclose(drops, drops_q, atol=PROB_TOL, rtol=0)
    aopc = drops_q.sum(axis=1) / (drops_q.shape[1] + 1)
    expected = aopc if order == "morf" else -aopc  # LeRF is negated so higher stays better
    np.testing.assert_allclose(scores.values.numpy(), expected, atol=PROB_TOL, rtol=0)


def _quantus_subsets(seed: int, runs: int, rows: int, features: int, size: int) -> np.ndarray:
    """Replay Quantus's NumPy draws: per run, one choice per row, then the extra uniform(B)."""
    rng_state = np.random.get_state()
    np.random.seed(seed)
    out = []
    for _ in range(runs):
        out.append(np.stack([np.random.choice(features, size, replace=False) for _ in range(rows)]))
        np.random.uniform(low=0.0, high=1.0, size=rows)  # get_baseline_dict's "uniform" entry
    np.random.set_state(rng_state)
    return np.stack(out, axis=1)  # (rows, runs, size)


def test_faithfulness_correlation_matches_quantus_given_same_draws(toy) -> None:
    runs, size, seed = 20, 32, 7
    q = quantus.FaithfulnessCorrelation(
        nr_runs=runs,
        subset_size=size,
        normalise=False,
        return_aggregate=False,
        disable_warnings=True,
    )
    np.random.seed(seed)
    corr_q = _quantus(q, toy)
    subsets = torch.as_tensor(_quantus_subsets(seed, runs, 8, 256, size))
    pixels = toy.attribution.pixels
    corr, _, _ = correlation_from_subsets(
        toy.model, toy.batch, toy.targets, pixels, subsets, baseline="black", output="logit"
    )
    np.testing.assert_allclose(corr.numpy(), corr_q, atol=1e-5, rtol=0)


def test_registered_faithfulness_correlation_matches_quantus_fed_its_subsets(
    toy, monkeypatch
) -> None:
    """The metric itself (its subsets keyed by sample id) against Quantus given those subsets."""
    runs, size = 12, 32
    metric = harness.get_metric("faithfulness.correlation", runs=runs, subset_size=size, seed=3)
    ours = metric.evaluate(toy.model, toy.batch, toy.targets, toy.attribution)
    subsets = sample_subsets(
        row_seeds("faithfulness.correlation", 3, toy.batch.ids), runs, 256, size
    )
    order = iter(subsets[i, r].numpy() for r in range(runs) for i in range(len(toy.batch)))
    monkeypatch.setattr(np.random, "choice", lambda *a, **k: next(order))  # Quantus: run, row
    q = quantus.FaithfulnessCorrelation(
        nr_runs=runs, subset_size=size, normalise=False, return_aggregate=False,
        disable_warnings=True,
    )  # fmt: skip
    np.testing.assert_allclose(ours.values.numpy(), _quantus(q, toy), atol=1e-5, rtol=0)


def test_faithfulness_correlation_reports_run_agreement(toy) -> None:
    metric = harness.get_metric("faithfulness.correlation", runs=40, subset_size=32, seed=1)
    scores = metric.evaluate(toy.model, toy.batch, toy.targets, toy.attribution)
    assert -1.0 <= scores.notes["run_agreement"] <= 1.0
    again = metric.evaluate(toy.model, toy.batch, toy.targets, toy.attribution)
    torch.testing.assert_close(scores.values, again.values)  # a seed makes it reproducible
    # the same note from NumPy / SciPy: Pearson per row on each half of the runs, then
    # Spearman across rows between the halves
    seeds = row_seeds("faithfulness.correlation", 1, toy.batch.ids)
    subsets = sample_subsets(seeds, 40, 256, 32)
    pixels = toy.attribution.pixels.reshape(len(toy.batch), -1).double().numpy()
    sums = np.take_along_axis(pixels[:, None, :], subsets.numpy(), axis=2).sum(axis=2)
    deltas = scores.curves["delta"].double().numpy()
    halves = [
        [np.corrcoef(sums[i, part], deltas[i, part])[0, 1] for i in range(len(sums))]
        for part in (slice(0, 20), slice(20, 40))
    ]
    expected = scipy.stats.spearmanr(*halves).statistic
    assert scores.notes["run_agreement"] == pytest.approx(expected, abs=1e-9)


def _insert_input_pixels(x: np.ndarray):
    """A Quantus perturb_func that writes the input's pixels (what the paper does)."""
    flat = x.reshape(len(x), -1)

    def perturb(arr: np.ndarray, indices: np.ndarray, **_: object) -> np.ndarray:
        out = arr.copy()
        rows = np.arange(len(arr))[:, None]
        out[rows, indices] = flat[rows, indices]
        return out

    return perturb


def test_monotonicity_follows_paper_and_matches_fixed_quantus(toy) -> None:
    # Quantus 0.6.0 replaces baseline pixels by the baseline value computed from the
    # baseline image itself, so its image never changes and every row is "monotonic".
    broken = quantus.Monotonicity(features_in_step=64, normalise=False, disable_warnings=True)
    assert _quantus(broken, toy).all()
    fixed = quantus.Monotonicity(
        features_in_step=128, normalise=False, disable_warnings=True,
        perturb_func=_insert_input_pixels(toy.x),
    )  # fmt: skip
    expected = _quantus(fixed, toy)
    ours = harness.get_metric("faithfulness.monotonicity", pixels_per_step=128)
    values = ours.evaluate(toy.model, toy.batch, toy.targets, toy.attribution).values.numpy()
    np.testing.assert_array_equal(values, expected.astype(float))
    assert 0 < values.sum() < len(values), "the case should mix monotonic and non-monotonic rows"


def test_road_matches_quantus_without_noise(toy) -> None:
    percentages = [5, 25, 50, 75, 95]
    q = quantus.ROAD(percentages=percentages, noise=0.0, normalise=False, disable_warnings=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        per_pct = q(model=toy.module, x_batch=toy.x, y_batch=toy.y, a_batch=toy.a, device="cpu")
    ours = harness.get_metric("faithfulness.road", percentages=percentages, noise=0.0)
    scores = ours.evaluate(toy.model, toy.batch, toy.targets, toy.attribution)
    accuracy = scores.curves["correct"].double().mean(dim=0).numpy()
    np.testing.assert_array_equal(accuracy, np.array([per_pct[p] for p in percentages]))
    np.testing.assert_allclose(
        scores.values.numpy(), scores.curves["correct"].double().mean(1).numpy()
    )


def test_road_lerf_matches_quantus_on_the_negated_attribution(toy) -> None:
    """Quantus's ROAD removes the most relevant first only; LeRF of a is its MoRF of -a."""
    percentages = [5, 25, 50, 75, 95]
    q = quantus.ROAD(percentages=percentages, noise=0.0, normalise=False, disable_warnings=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        per_pct = q(model=toy.module, x_batch=toy.x, y_batch=toy.y, a_batch=-toy.a, device="cpu")
    ours = harness.get_metric("faithfulness.road", percentages=percentages, noise=0.0, order="lerf")
    scores = ours.evaluate(toy.model, toy.batch, toy.targets, toy.attribution)
    accuracy = scores.curves["correct"].double().mean(dim=0).numpy()
    np.testing.assert_array_equal(accuracy, np.array([per_pct[p] for p in percentages]))
    np.testing.assert_allclose(
        scores.values.numpy(), 1 - scores.curves["correct"].double().mean(1).numpy()
    )


def test_road_noise_is_standard_normal_as_quantus_draws_it() -> None:
    """Quantus adds ``noise * np.random.randn`` to imputed pixels; our counter-based draws
    must have the same distribution (Kolmogorov-Smirnov against N(0, 1), fixed seeds)."""
    draws = hashed_normal(7, torch.arange(64), 1024).flatten().numpy()
    assert scipy.stats.kstest(draws, "norm").pvalue > 0.01
    assert abs(draws.mean()) < 0.01 and abs(draws.std() - 1) < 0.01
    other = hashed_normal(8, torch.arange(64), 1024).flatten().numpy()
    assert abs(np.corrcoef(draws, other)[0, 1]) < 0.01  # seeds give independent streams
