"""Property tests: a row's score ignores its batch neighbours and the engine's chunk size."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import harness
from harness.metrics import _engine

CASES = {
    "faithfulness.deletion_auc": {"pixels_per_step": 32},
    "faithfulness.insertion_auc": {"pixels_per_step": 32},
    "faithfulness.pixel_flipping": {"pixels_per_step": 32},
    "faithfulness.region_perturbation": {"patch_size": 4, "regions": 6, "order": "lerf"},
    "faithfulness.monotonicity": {"pixels_per_step": 64},
    "faithfulness.road": {"percentages": (10, 50, 90), "seed": 3},
}
TOL = 1e-6  # float32 forwards of different batch compositions
SETTINGS = settings(
    max_examples=4,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _score(name: str, setup, rows: list[int]) -> torch.Tensor:
    metric = harness.get_metric(name, **CASES[name])
    batch = setup.batch.index(rows)
    targets = setup.targets[rows]
    return metric.evaluate(setup.model, batch, targets, setup.attribution.index(rows)).values


@pytest.mark.parametrize("name", sorted(CASES))
@SETTINGS
@given(rows=st.lists(st.integers(0, 7), min_size=1, max_size=5, unique=True))
def test_row_score_does_not_depend_on_other_rows(toy, name: str, rows: list[int]) -> None:
    full = _score(name, toy, list(range(8)))
    with _engine.configure(cache=False):
        part = _score(name, toy, rows)
    torch.testing.assert_close(part, full[rows], atol=TOL, rtol=0)


@pytest.mark.parametrize("name", sorted(CASES))
@SETTINGS
@given(max_batch=st.sampled_from([1, 3, 7, 16, 33]))
def test_chunk_size_does_not_change_values(toy, name: str, max_batch: int) -> None:
    reference = _score(name, toy, list(range(8)))
    with _engine.configure(max_batch=max_batch, cache=False):
        chunked = _score(name, toy, list(range(8)))
    torch.testing.assert_close(chunked, reference, atol=TOL, rtol=0)


CORRELATION = {"runs": 12, "subset_size": 24}
EXACT = 1e-12  # the same draws and, per row, the same float32 forwards


@SETTINGS
@given(
    rows=st.one_of(
        st.permutations(range(8)),
        st.lists(st.integers(0, 7), min_size=1, max_size=7, unique=True),
    ),
    seed=st.one_of(st.none(), st.integers(0, 2**40)),
)
def test_correlation_row_ignores_batch_composition_and_order(
    toy, rows: list[int], seed: int | None
) -> None:
    """A row's subsets, drops and score are the same in any sub-batch or permutation.

    ``seed=None`` draws the seed from torch's global generator, re-seeded before each call.
    """
    metric = harness.get_metric("faithfulness.correlation", seed=seed, **CORRELATION)

    def run(index: list[int]):
        torch.manual_seed(5)
        batch, targets = toy.batch.index(index), toy.targets[index]
        with _engine.configure(cache=False):
            return metric.evaluate(toy.model, batch, targets, toy.attribution.index(index))

    full, part = run(list(range(8))), run(rows)
    torch.testing.assert_close(part.curves["delta"], full.curves["delta"][rows], atol=EXACT, rtol=0)
    torch.testing.assert_close(part.values, full.values[rows], atol=EXACT, rtol=0)


def test_correlation_with_a_seed_is_reproducible_and_runs_move_it(toy) -> None:
    make = lambda seed: harness.get_metric(  # noqa: E731
        "faithfulness.correlation", runs=16, subset_size=24, seed=seed
    )
    a = make(1).evaluate(toy.model, toy.batch, toy.targets, toy.attribution).values
    with _engine.configure(max_batch=7, cache=False):
        b = make(1).evaluate(toy.model, toy.batch, toy.targets, toy.attribution).values
    c = make(2).evaluate(toy.model, toy.batch, toy.targets, toy.attribution).values
    torch.testing.assert_close(a, b, atol=1e-9, rtol=0)
    assert not torch.allclose(a, c)


@pytest.mark.parametrize(("features", "size"), [(10, 3), (6, 6), (50, 1)])
def test_subsets_are_distinct_uniform_and_reproducible(features: int, size: int) -> None:
    from harness.draws import row_seeds
    from harness.metrics.faithfulness.faithfulness_correlation import sample_subsets

    draw = lambda seed: sample_subsets(  # noqa: E731
        row_seeds("test", seed, [f"s{i}" for i in range(200)]), 100, features, size
    )
    subsets = draw(0)
    assert subsets.shape == (200, 100, size)
    assert torch.equal(subsets, draw(0)) and not torch.equal(subsets, draw(1))
    flat = subsets.reshape(-1, size)
    assert int(flat.min()) >= 0 and int(flat.max()) < features
    ordered = flat.sort(dim=1).values
    assert bool((ordered[:, 1:] != ordered[:, :-1]).all()), "features repeat within a subset"
    counts = torch.bincount(flat.flatten(), minlength=features).double()
    expected = len(flat) * size / features
    # every feature is equally likely: within 5 standard deviations of the binomial count
    assert (
        float((counts - expected).abs().max())
        < 5 * (expected * (1 - size / features)) ** 0.5 + 1e-9
    )
    first = torch.bincount(flat[:, 0], minlength=features).double()
    assert float((first - len(flat) / features).abs().max()) < 5 * (len(flat) / features) ** 0.5


def test_uniform_baseline_is_fixed_per_sample_noise_within_the_image_range(toy_factory) -> None:
    """Samek et al.'s uniform replacement: one noise image per sample id, in the image's range."""
    from harness.metrics.faithfulness._common import uniform_baseline

    setup = toy_factory(n=6, channels=3, seed=4)
    images, ids = setup.batch.images, setup.batch.ids
    noise = uniform_baseline(images, ids)
    assert noise.shape == images.shape
    low, high = images.flatten(1).amin(1), images.flatten(1).amax(1)
    assert bool(
        (noise.flatten(1).amin(1) >= low).all() and (noise.flatten(1).amax(1) <= high).all()
    )
    spread = noise.flatten(1).std(1) / (high - low)
    assert bool((spread - 12**-0.5).abs().lt(0.02).all())  # uniform: sd = range / sqrt(12)
    order = [4, 1, 0]
    torch.testing.assert_close(
        uniform_baseline(images[order], [ids[i] for i in order]), noise[order]
    )
    assert not torch.allclose(
        noise[0] - low[0], (noise[1] - low[1]) * (high[0] - low[0]) / (high[1] - low[1])
    )

    metric = harness.get_metric(
        "faithfulness.pixel_flipping", pixels_per_step=64, baseline="uniform"
    )
    curve = metric.evaluate(setup.model, setup.batch, setup.targets, setup.attribution).curves
    with torch.no_grad():
        probs = setup.model.probabilities(setup.model.logits(setup.batch.with_images(noise)))
    flipped_all = probs.gather(1, setup.targets.view(-1, 1)).squeeze(1)
    torch.testing.assert_close(curve["probability"][:, -1].float(), flipped_all, atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("faithfulness.region_perturbation", {"patch_size": 4, "regions": 6}),
        ("faithfulness.monotonicity", {"pixels_per_step": 64}),
        ("faithfulness.correlation", {"runs": 8, "subset_size": 24, "seed": 1}),
    ],
)
def test_uniform_baseline_rows_ignore_their_batch(toy, name: str, params: dict) -> None:
    metric = harness.get_metric(name, baseline="uniform", **params)
    full = metric.evaluate(toy.model, toy.batch, toy.targets, toy.attribution).values
    rows = [6, 2, 5]
    with _engine.configure(cache=False):
        part = metric.evaluate(
            toy.model, toy.batch.index(rows), toy.targets[rows], toy.attribution.index(rows)
        ).values
    torch.testing.assert_close(part, full[rows], atol=TOL, rtol=0)
