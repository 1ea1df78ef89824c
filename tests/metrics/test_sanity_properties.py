"""Random logit properties: id-keyed uniform other classes; a row's score ignores its batch."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import scipy.stats
import torch
from _toys_a import BATCH_PROPERTY, SUB_BATCHES, InputXGradient, explained_case, single_thread
from hypothesis import given
from hypothesis import strategies as st

import harness
from harness.metrics.sanity.random_logit import other_classes

# The same class per row; explaining a batch of another size may round float32 kernels
# differently (up to 1.4e-7 in SSIM here), while another class moves a score by ~0.1 or more.
TOL = 1e-6
EXPLAINER = InputXGradient()


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    yield from single_thread()


@pytest.fixture(scope="module", params=[3, 5], ids=lambda k: f"classes={k}")
def case(request):
    classes = request.param
    # every class is some row's target
    return explained_case(EXPLAINER, classes, targets=torch.arange(8) % classes)


def _scores(case, rows: list[int], similarity: str, seed: int) -> torch.Tensor:
    model, batch, targets, attribution = case
    metric = harness.get_metric("sanity.random_logit", similarity=similarity, seed=seed)
    return metric.score(
        model, batch.index(rows), targets[rows], attribution.index(rows), explainer=EXPLAINER
    )


@BATCH_PROPERTY
@given(
    rows=SUB_BATCHES,
    similarity=st.sampled_from(["ssim", "spearman"]),
    seed=st.integers(0, 2**40),
)
def test_row_score_ignores_batch_composition_and_order(
    case, rows: list[int], similarity: str, seed: int
) -> None:
    full = _scores(case, list(range(8)), similarity, seed)
    part = _scores(case, rows, similarity, seed)
    torch.testing.assert_close(part, full[rows], atol=TOL, rtol=0)


def test_other_classes_never_the_target_and_uniform() -> None:
    """3000 fixed ids, K = 4: never the target, uniform over the 3 others (chi-square)."""
    ids = tuple(f"sample-{i:05d}" for i in range(3000))
    targets = torch.tensor([0, 1, 2, 3] * 750)
    others = other_classes(targets, 4, salt="sanity.random_logit", seed=0, ids=ids)
    assert bool((others != targets).all())
    assert int(others.min()) >= 0 and int(others.max()) <= 3
    for t in range(4):  # the j-th other class: j = (other - (other > t)) is uniform on {0, 1, 2}
        mine = others[targets == t]
        j = mine - (mine > t).long()
        counts = torch.bincount(j, minlength=3).numpy()
        assert len(counts) == 3
        assert scipy.stats.chisquare(counts).pvalue > 0.01
    j_all = others - (others > targets).long()
    assert scipy.stats.chisquare(torch.bincount(j_all, minlength=3).numpy()).pvalue > 0.01
    again = other_classes(targets, 4, salt="sanity.random_logit", seed=0, ids=ids)
    np.testing.assert_array_equal(again, others)  # seeded
    reseeded = other_classes(targets, 4, salt="sanity.random_logit", seed=1, ids=ids)
    assert not torch.equal(reseeded, others)
    # A row's class follows its id, not its position.
    perm = torch.randperm(3000, generator=torch.Generator().manual_seed(0))
    moved = other_classes(
        targets[perm], 4, salt="sanity.random_logit", seed=0, ids=[ids[i] for i in perm]
    )
    np.testing.assert_array_equal(moved, others[perm])


def test_multilabel_other_classes_are_negative_labels_when_there_are_any() -> None:
    labels = torch.tensor([[1, 1, 0, 0, -1]] * 200 + [[1, 1, 1, 1, 1]] * 200)
    targets = torch.zeros(400, dtype=torch.long)
    ids = [f"s{i}" for i in range(400)]
    others = other_classes(
        targets, 5, salt="sanity.random_logit", seed=0, ids=ids, allowed=labels == 0
    )
    assert set(others[:200].tolist()) == {2, 3}  # the negatives only, both drawn
    assert set(others[200:].tolist()) == {1, 2, 3, 4}  # no negative: every other class
    alone = other_classes(
        targets[5:6], 5, salt="sanity.random_logit", seed=0, ids=ids[5:6], allowed=labels[5:6] == 0
    )
    assert alone.item() == others[5].item()  # keyed by sample id, not by batch
