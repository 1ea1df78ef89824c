"""Property tests: a row's sensitivity ignores the other rows of its batch and their order."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from _toys_a import BATCH_PROPERTY, SUB_BATCHES, InputXGradient, explained_case, single_thread
from hypothesis import given
from hypothesis import strategies as st

import harness

NAMES = ("robustness.max_sensitivity", "robustness.avg_sensitivity")
EXACT = 1e-12  # the same noise and, per row, the same float32 explanations
FLOAT32 = 1e-6  # explainer calls of other sizes may round float32 kernels differently
EXPLAINER = InputXGradient()


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    yield from single_thread()


@pytest.fixture(scope="module")
def case():
    return explained_case(EXPLAINER)


def _scores(name: str, case, rows: list[int], chunk: int | None = None):
    model, batch, targets, attribution = case
    torch.manual_seed(7)  # the runner seeds the global generator before each stage
    metric = harness.get_metric(name, n_samples=6, chunk=chunk)
    return metric.evaluate(
        model, batch.index(rows), targets[rows], attribution.index(rows), explainer=EXPLAINER
    )


@pytest.mark.parametrize("name", NAMES)
@BATCH_PROPERTY
@given(rows=SUB_BATCHES)
def test_row_sensitivity_ignores_batch_composition_and_order(
    case, name: str, rows: list[int]
) -> None:
    full, part = _scores(name, case, list(range(8))), _scores(name, case, rows)
    torch.testing.assert_close(
        part.curves["changes"], full.curves["changes"][rows], atol=EXACT, rtol=0
    )
    torch.testing.assert_close(part.values, full.values[rows], atol=EXACT, rtol=0)


@pytest.mark.parametrize("name", NAMES)
@BATCH_PROPERTY
@given(chunk=st.sampled_from([1, 5, 6, 13, 48]), rows=SUB_BATCHES)
def test_row_sensitivity_ignores_explainer_chunk(
    case, name: str, chunk: int, rows: list[int]
) -> None:
    """The same noise per row; explaining in calls of other sizes only rounds differently."""
    reference = _scores(name, case, list(range(8)))
    chunked = _scores(name, case, rows, chunk=chunk)
    torch.testing.assert_close(chunked.values, reference.values[rows], atol=0, rtol=FLOAT32)


def test_max_and_avg_share_draws(case) -> None:
    """One global seed gives both metrics the same noise: max >= mean per row, same curves."""
    rows = list(range(8))
    high, mean = (_scores(name, case, rows) for name in NAMES)
    torch.testing.assert_close(high.curves["changes"], mean.curves["changes"], atol=0, rtol=0)
    assert bool((high.values >= mean.values).all())
