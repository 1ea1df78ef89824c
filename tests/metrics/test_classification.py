"""Classification metrics against hand-computed cases and scikit-learn directly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

import harness
from harness.contracts.tags import Task
from harness.errors import DataError
from harness.stats import bootstrap_statistic


def _mc_case(seed: int = 0, n: int = 60, k: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, k, (n,), generator=g)
    probs = torch.softmax(
        torch.randn(n, k, generator=g) + 1.5 * torch.nn.functional.one_hot(labels, k), 1
    )
    return labels, probs


def test_accuracy_hand_computed() -> None:
    labels = torch.tensor([0, 1, 1, 2])
    probs = torch.tensor([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]])
    acc = harness.get_metric("classification.accuracy")
    assert acc.compute(labels, probs, Task.MULTICLASS) == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("name", "which", "average"),
    [
        ("classification.precision_weighted", 0, "weighted"),
        ("classification.recall_weighted", 1, "weighted"),
        ("classification.f1_weighted", 2, "weighted"),
        ("classification.f1_macro", 2, "macro"),
    ],
)
def test_prf_multiclass_matches_sklearn(name: str, which: int, average: str) -> None:
    for seed in range(3):
        labels, probs = _mc_case(seed)
        expected = skm.precision_recall_fscore_support(
            labels.numpy(), probs.argmax(1).numpy(), average=average, zero_division=0
        )[which]
        got = harness.get_metric(name).compute(labels, probs, Task.MULTICLASS)
        assert got == pytest.approx(expected, abs=1e-12)


def test_prf_zero_division_is_zero() -> None:
    # class 2 is never predicted: its precision is 0/0 -> 0 (not NaN, no warning)
    labels = torch.tensor([0, 1, 2, 2])
    probs = torch.tensor([[0.9, 0.1, 0.0], [0.1, 0.9, 0.0], [0.6, 0.4, 0.0], [0.4, 0.6, 0.0]])
    p = harness.get_metric("classification.precision_weighted").compute(
        labels, probs, Task.MULTICLASS
    )
    # per class precision: c0 = 1/2, c1 = 1/2, c2 = 0; supports 1, 1, 2 -> (0.5 + 0.5 + 0) / 4
    assert p == pytest.approx(0.25)


def test_prf_multilabel_hand_computed_with_missing() -> None:
    # label 0: known rows 0,1,2 -> y=[1,0,1], pred=[1,1,0]: P=1/2, R=1/2, F1=1/2, support 2
    # label 1: row 3 missing (-2), row 2 uncertain left (-1, ignored)
    #          -> y=[1,1], pred=[1,1]: F1=1, support 2
    labels = torch.tensor([[1, 1], [0, 1], [1, -1], [-2, -2]])
    probs = torch.tensor([[0.9, 0.9], [0.7, 0.6], [0.2, 0.1], [0.9, 0.1]])
    f1w = harness.get_metric("classification.f1_weighted").compute(labels, probs, Task.MULTILABEL)
    f1m = harness.get_metric("classification.f1_macro").compute(labels, probs, Task.MULTILABEL)
    pw = harness.get_metric("classification.precision_weighted").compute(
        labels, probs, Task.MULTILABEL
    )
    assert f1w == pytest.approx((0.5 * 2 + 1.0 * 2) / 4)
    assert f1m == pytest.approx(0.75)
    assert pw == pytest.approx(0.75)
    strict = harness.get_metric("classification.f1_macro", threshold=0.95)
    # nothing predicted positive -> every F1 is 0 (zero_division=0)
    assert strict.compute(labels, probs, Task.MULTILABEL) == 0.0


def test_prf_multilabel_fully_known_matches_sklearn() -> None:
    g = torch.Generator().manual_seed(3)
    labels = torch.randint(0, 2, (50, 5), generator=g)
    probs = torch.rand(50, 5, generator=g)
    pred = (probs > 0.5).long().numpy()
    for name, avg, which in [
        ("classification.f1_weighted", "weighted", 2),
        ("classification.f1_macro", "macro", 2),
        ("classification.recall_weighted", "weighted", 1),
    ]:
        expected = skm.precision_recall_fscore_support(
            labels.numpy(), pred, average=avg, zero_division=0
        )[which]
        assert harness.get_metric(name).compute(labels, probs, Task.MULTILABEL) == pytest.approx(
            expected
        )


def test_auroc_multiclass_ovr_and_binary() -> None:
    labels, probs = _mc_case(1, n=80, k=4)
    expected = skm.roc_auc_score(labels.numpy(), probs.numpy(), multi_class="ovr", average="macro")
    auroc = harness.get_metric("classification.auroc")
    assert auroc.compute(labels, probs, Task.MULTICLASS) == pytest.approx(expected)
    one = harness.get_metric("classification.auroc", label=2)
    assert one.compute(labels, probs, Task.MULTICLASS) == pytest.approx(
        skm.roc_auc_score((labels == 2).numpy(), probs[:, 2].numpy())
    )
    lb, pb = _mc_case(2, n=40, k=2)
    assert auroc.compute(lb, pb, Task.MULTICLASS) == pytest.approx(
        skm.roc_auc_score(lb.numpy(), pb[:, 1].numpy())
    )


def test_auroc_multilabel_per_label_and_mean() -> None:
    labels = torch.tensor([[1, 0, 1], [0, 0, -2], [1, -2, 1], [0, 0, 1], [-1, 1, 1]])
    probs = torch.tensor(
        [[0.9, 0.2, 0.5], [0.1, 0.3, 0.5], [0.4, 0.9, 0.6], [0.5, 0.1, 0.7], [0.6, 0.8, 0.2]]
    )
    auroc = harness.get_metric("classification.auroc")
    per = auroc.per_label(labels, probs, Task.MULTILABEL)
    # label 0 known rows 0..3: y=[1,0,1,0], p=[.9,.1,.4,.5]
    #   pairs (pos > neg): .9>.1, .9>.5, .4>.1; .4<.5 -> 3/4
    # label 1 known rows 0,1,3,4: y=[0,0,0,1], p=[.2,.3,.1,.8] -> 1.0
    # label 2: all known rows positive -> undefined
    assert per == {0: pytest.approx(0.75), 1: pytest.approx(1.0)}
    assert auroc.compute(labels, probs, Task.MULTILABEL) == pytest.approx(0.875)
    with pytest.raises(DataError, match="undefined"):
        harness.get_metric("classification.auroc", label=2).compute(labels, probs, Task.MULTILABEL)


def test_auroc_interval_averages_the_labels_of_the_reported_value(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A resample losing a rare label's only positive is dropped, not averaged over fewer labels."""
    # label 0: AUC 0 (its one positive scored lowest); labels 1 and 2: AUC 1; label 3 all negative
    labels = torch.zeros(12, 4, dtype=torch.long)
    labels[0, 0] = 1
    labels[:6, 1] = 1
    labels[6:, 2] = 1
    probs = torch.full((12, 4), 0.5)
    probs[:, 0] = torch.linspace(0.1, 0.9, 12)
    probs[:, 1] = (labels[:, 1] * 0.8 + 0.1).float()
    probs[:, 2] = (labels[:, 2] * 0.8 + 0.1).float()
    auroc = harness.get_metric("classification.auroc")
    with caplog.at_level("WARNING"):
        statistic = auroc.resample_statistic(labels, probs, Task.MULTILABEL)
    assert "label(s) [3] have a single class" in caplog.text
    everything = np.arange(12)
    assert (
        statistic(everything)
        == auroc.compute(labels, probs, Task.MULTILABEL)
        == pytest.approx(1 / 3 * 2)
    )
    without_rare_positive = np.arange(1, 12)
    assert auroc.compute(labels[1:], probs[1:], Task.MULTILABEL) == pytest.approx(1.0)
    with pytest.raises(DataError, match=r"label\(s\) \[0\] undefined"):
        statistic(without_rare_positive)
    summary = bootstrap_statistic(12, statistic, n_boot=200, seed=0)
    assert summary.ci_high <= 2 / 3 + 1e-12  # every kept resample averages labels 0, 1 and 2


def test_masked_bce_matches_paper_definition() -> None:
    labels = torch.tensor([[1, 0, -2], [0, -2, 1]])
    probs = torch.tensor([[0.8, 0.3, 0.99], [0.4, 0.5, 0.6]])
    expected = -(np.log(0.8) + np.log(0.7) + np.log(0.6) + np.log(0.6)) / 4
    bce = harness.get_metric("classification.masked_bce")
    assert bce.compute(labels, probs, Task.MULTILABEL) == pytest.approx(expected)
    # paper code: mask = targets != -2, BCE on clamped targets, sum / count
    t = labels.double()
    mask = (t != -2).double()
    ref = (
        torch.nn.functional.binary_cross_entropy(probs.double(), t.clamp(0, 1), reduction="none")
        * mask
    ).sum() / mask.sum()
    assert bce.compute(labels, probs, Task.MULTILABEL) == pytest.approx(float(ref))


def test_masked_bce_ignores_remaining_uncertain() -> None:
    labels = torch.tensor([[1, -1], [0, 1]])
    probs = torch.tensor([[0.8, 0.01], [0.4, 0.5]])
    expected = -(np.log(0.8) + np.log(0.6) + np.log(0.5)) / 3
    assert harness.get_metric("classification.masked_bce").compute(
        labels, probs, Task.MULTILABEL
    ) == pytest.approx(expected)


def test_masked_accuracy_matches_paper_code() -> None:
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (30, 6), generator=g)
    labels[torch.rand(30, 6, generator=g) < 0.3] = -2
    labels[:, 5] = -2
    labels[0, 5] = 1  # one known row only -> skipped (needs >= 2)
    probs = torch.rand(30, 6, generator=g)
    accs = []
    for i in range(6):
        m = labels[:, i] != -2
        if m.sum() < 2:
            continue
        accs.append(skm.accuracy_score(labels[m, i].numpy(), (probs[m, i] > 0.5).long().numpy()))
    got = harness.get_metric("classification.masked_accuracy").compute(
        labels, probs, Task.MULTILABEL
    )
    assert got == pytest.approx(float(np.mean(accs)))


def test_multilabel_accuracy_is_micro_over_known_entries() -> None:
    labels = torch.tensor([[1, -2], [0, 1], [1, 0]])
    probs = torch.tensor([[0.7, 0.9], [0.6, 0.8], [0.2, 0.1]])
    # known: (1,.7) ok, (0,.6) wrong, (1,.8) ok, (1,.2) wrong, (0,.1) ok -> 3/5
    assert harness.get_metric("classification.accuracy").compute(
        labels, probs, Task.MULTILABEL
    ) == pytest.approx(0.6)


def test_bad_inputs_raise_data_error() -> None:
    acc = harness.get_metric("classification.accuracy")
    with pytest.raises(DataError, match="out of range"):
        acc.compute(torch.tensor([0, 3]), torch.rand(2, 3), Task.MULTICLASS)
    with pytest.raises(DataError, match="expected"):
        acc.compute(torch.tensor([[0, 1]]), torch.rand(1, 3), Task.MULTILABEL)
    with pytest.raises(DataError, match="states"):
        acc.compute(torch.tensor([[0, 5, 1]]), torch.rand(1, 3), Task.MULTILABEL)
    nan = float("nan")  # a float label matrix with NaN for "unknown" is named, not a crash
    with pytest.raises(DataError, match=r"states must be 1, 0, -1 or -2 - got \['0.5', 'nan'\]"):
        acc.compute(torch.tensor([[0.0, nan, 0.5]]), torch.rand(1, 3), Task.MULTILABEL)
