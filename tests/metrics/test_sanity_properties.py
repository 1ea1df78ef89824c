"""Random logit properties: id-keyed uniform other classes; a row's score ignores its batch."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pytest
import scipy.stats
import torch
from _toys_a import (
    BATCH_PROPERTY,
    SUB_BATCHES,
    InputXGradient,
    TinyCNN,
    blob_batch,
    explained_case,
    single_thread,
)
from hypothesis import given
from hypothesis import strategies as st

import harness
from harness.contracts import DatasetInfo, Modality, Task
from harness.metrics.sanity.random_logit import other_classes, score_other_classes

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


def test_multilabel_rows_without_a_negative_draw_uncertain_or_missing_labels_first() -> None:
    """[1, 1, -1, -2] compares with label 2 or 3, never with the other present finding."""
    model = TinyCNN(classes=4, seed=2)
    model.build(DatasetInfo(Modality.IMAGE, Task.MULTILABEL, tuple(f"f{i}" for i in range(4))))
    batch, _ = blob_batch(n=8, size=16, classes=4, seed=5)
    labels = torch.tensor([[1, 1, -1, -2]] * 4 + [[1, 1, 1, 1]] * 2 + [[1, 0, 1, 0]] * 2)
    batch = replace(batch, labels=labels)
    targets = torch.zeros(8, dtype=torch.long)
    attribution = EXPLAINER.explain(model, batch, targets)
    metric = harness.get_metric("sanity.random_logit", similarity="spearman", seed=3)
    scores = metric.evaluate(model, batch, targets, attribution, explainer=EXPLAINER)
    allowed = torch.tensor([[0, 0, 1, 1]] * 4 + [[0, 1, 1, 1]] * 2 + [[0, 1, 0, 1]] * 2).bool()
    others = other_classes(
        targets, 4, salt="sanity.random_logit", seed=3, ids=batch.ids, allowed=allowed
    )
    assert set(others[:4].tolist()) <= {2, 3} and set(others[6:].tolist()) <= {1, 3}
    expected = score_other_classes(
        model, batch, attribution, EXPLAINER, others, similarity="spearman"
    )
    torch.testing.assert_close(scores.values, expected.values)
    # the two all-present rows can only compare with a present finding: a quarter of the rows
    assert scores.notes["other_class_present_fraction"] == pytest.approx(2 / 8)
