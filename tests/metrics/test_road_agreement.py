"""ROAD's run-to-run agreement: a second, independent noise run, reported next to the value."""

from __future__ import annotations

import pytest
import torch
from scipy import stats

import harness
from harness.draws import second_run_seed
from harness.metrics import _engine

PARAMS = {"percentages": (10, 30, 50, 70, 90), "output": "probability", "noise": 0.3}


def _road(toy, **params: object):
    metric = harness.get_metric("faithfulness.road", **{**PARAMS, **params})
    with _engine.configure(cache=False):
        return metric.evaluate(toy.model, toy.batch, toy.targets, toy.attribution)


@pytest.mark.parametrize("order", ["morf", "lerf"])
def test_agreement_is_the_spearman_of_two_seeded_runs_and_leaves_the_value_alone(
    toy, order: str
) -> None:
    both = _road(toy, seed=3, order=order)
    first = _road(toy, seed=3, order=order, agreement=False)
    second = _road(toy, seed=second_run_seed(3), order=order, agreement=False)
    torch.testing.assert_close(both.values, first.values, atol=1e-6, rtol=0)
    torch.testing.assert_close(both.curves["probability"], first.curves["probability"])
    assert not torch.allclose(first.values, second.values)  # the runs draw other noise
    rho = stats.spearmanr(first.values.numpy(), second.values.numpy()).statistic
    assert both.notes["run_agreement"] == pytest.approx(rho, abs=1e-6)
    assert "run_agreement" not in first.notes


def test_without_noise_there_is_one_run_and_nothing_to_agree_on(toy) -> None:
    with _engine.count_forwards() as counted:
        plain = _road(toy, seed=3, noise=0.0)
    assert "run_agreement" not in plain.notes
    with _engine.count_forwards() as noisy:
        _road(toy, seed=3)
    assert noisy.images == 2 * counted.images == 2 * len(toy.targets) * len(PARAMS["percentages"])
