"""Random logit's run-to-run agreement: a second, independent class draw, reported next to the value."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from _toys_a import InputXGradient
from scipy import stats
from torch import Tensor

import harness
from harness.contracts import Attribution, Batch, Model, Task
from harness.draws import second_run_seed
from harness.metrics.sanity.random_logit import other_classes


class CountingGradient(InputXGradient):
    """Input x gradient that counts the rows it explains."""

    def __init__(self) -> None:
        self.rows = 0

    def _explain(self, model: Model, batch: Batch, targets: Tensor) -> Attribution:
        self.rows += len(batch)
        return super()._explain(model, batch, targets)


def _score(setup, batch: Batch | None = None, **params: object):
    metric = harness.get_metric("sanity.random_logit", similarity="spearman", **params)
    explainer = CountingGradient()
    scores = metric.evaluate(
        setup.model, batch or setup.batch, setup.targets, setup.attribution, explainer=explainer
    )
    return scores, explainer.rows


def test_agreement_is_the_spearman_of_two_seeded_draws_and_leaves_the_value_alone(
    toy_factory,
) -> None:
    setup = toy_factory(n=24, size=16, classes=5, seed=3)
    both, explained = _score(setup, seed=7)
    first, once = _score(setup, seed=7, agreement=False)
    second, _ = _score(setup, seed=second_run_seed(7), agreement=False)
    torch.testing.assert_close(both.values, first.values)
    assert "run_agreement" not in first.notes
    rho = stats.spearmanr(first.values.numpy(), second.values.numpy()).statistic
    assert both.notes["run_agreement"] == pytest.approx(rho, abs=1e-6)
    # only the rows whose second class differs are explained again
    ids, targets = setup.batch.ids, setup.targets
    a = other_classes(targets, 5, salt="sanity.random_logit", seed=7, ids=ids)
    b = other_classes(targets, 5, salt="sanity.random_logit", seed=second_run_seed(7), ids=ids)
    moved = int((a != b).sum())
    assert 0 < moved < len(ids)
    assert explained == once + moved


def test_with_two_classes_nothing_is_drawn_or_explained_again(toy_factory) -> None:
    setup = toy_factory(n=12, size=16, classes=2, seed=3)
    scores, explained = _score(setup)
    assert "run_agreement" not in scores.notes
    assert explained == len(setup.batch)


def test_multilabel_rows_with_one_negative_label_keep_their_class(toy_factory, wrap) -> None:
    """Rows whose only candidate is one negative label draw it in both runs: never re-explained."""
    toy = toy_factory(n=12, size=16, classes=4, seed=3)
    labels = torch.tensor([[1, 0, 1, 1]] * 6 + [[1, 0, 0, 0]] * 6)
    setup = replace(
        toy,
        model=wrap(toy.module, task=Task.MULTILABEL, classes=4),
        batch=replace(toy.batch, labels=labels),
        targets=torch.zeros(12, dtype=torch.long),
    )
    scores, explained = _score(setup)
    draws = [
        other_classes(
            setup.targets, 4, salt="sanity.random_logit", seed=seed, ids=setup.batch.ids,
            allowed=labels == 0,
        )
        for seed in (42, second_run_seed(42))
    ]  # fmt: skip
    moved = draws[0] != draws[1]
    assert bool((draws[0][:6] == 1).all()) and not bool(moved[:6].any())
    assert bool(moved[6:].any())
    assert explained == 12 + int(moved.sum())
    assert "run_agreement" in scores.notes
