"""ERASER metrics: comprehensiveness, sufficiency (a plain-Python reference) and rationale AUPRC."""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction
from typing import ClassVar

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor, nn

import harness
from harness.contracts import Batch, DatasetInfo, Modality, Task, TorchModel
from harness.errors import DataError, PluginError
from harness.metrics.faithfulness.eraser import keep_tokens, token_counts, top_tokens

PAD = 0
VOCAB = 12


class OrderedBag(TorchModel):
    """Logits from token weights plus a position term: deleting and replacing tokens differ."""

    name: ClassVar[str] = "test.ordered_bag"

    def _build_module(self, info: DatasetInfo) -> nn.Module:
        return nn.Identity()

    def _forward(self, batch: Batch) -> Tensor:
        assert batch.tokens is not None
        return logits_of(batch.tokens)


_G = torch.Generator().manual_seed(0)
WEIGHTS = torch.randn(VOCAB, 3, generator=_G, dtype=torch.float64)
WEIGHTS[PAD] = 0.0
POSITION = torch.randn(3, generator=_G, dtype=torch.float64)


def logits_of(tokens: Tensor) -> Tensor:
    """Sum of token weights, plus a position-weighted sum (order matters)."""
    w = WEIGHTS[tokens]  # (N, L, 3)
    pos = torch.arange(tokens.shape[1], dtype=torch.float64).view(1, -1, 1) / tokens.shape[1]
    return (w.sum(1) + (w * pos).sum(1) * POSITION).float()


def _model() -> OrderedBag:
    model = OrderedBag()
    model.build(DatasetInfo(Modality.TEXT, Task.MULTICLASS, ("a", "b", "c"), seq_len=10))
    return model


def _reference(
    doc: list[int], scores: list[float], target: int, bins: list[float], *, keep_top: bool,
    delete: bool,
) -> float:  # fmt: skip
    """ERASER AOPC of one (right-padded) document, by lists: rank, cut, rebuild, score."""
    length = len(doc)
    valid = [i for i, t in enumerate(doc) if t != PAD]
    ranked = sorted(valid, key=lambda i: (-scores[i], i))

    def prob(tokens: list[int]) -> float:
        logits = logits_of(torch.tensor([tokens])).double()
        return float(torch.softmax(logits, 1)[0, target])

    clean, total = prob(doc), 0.0
    for b in bins:
        top = set(ranked[: min(len(valid), math.ceil(Fraction(str(b)) * len(valid) / 100))])
        kept = [i for i in valid if (i in top) == keep_top]
        if delete:
            new = [doc[i] for i in kept] + [PAD] * (length - len(kept))
        else:
            new = [doc[i] if i in kept else PAD for i in range(length)]
        total += clean - prob(new)
    return total / len(bins)  # ERASER's scorer: the mean over the bins


def _batch(n: int = 6, length: int = 10, seed: int = 1) -> tuple[Batch, Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(1, VOCAB, (n, length), generator=g)
    for i in range(n):  # ragged documents: padding at the end
        tokens[i, length - i :] = PAD
    scores = torch.randn(n, length, generator=g)
    scores[0, 2] = scores[0, 5]  # a tie: token order decides
    targets = torch.randint(0, 3, (n,), generator=g)
    batch = Batch(ids=tuple(f"d{i}" for i in range(n)), labels=targets, tokens=tokens)
    return batch, targets, scores


@pytest.mark.parametrize("name", ["faithfulness.comprehensiveness", "faithfulness.sufficiency"])
@pytest.mark.parametrize("removal", ["delete", "replace"])
def test_values_equal_the_list_reference(name: str, removal: str) -> None:
    model, (batch, targets, scores) = _model(), _batch()
    bins = [1, 5, 10, 20, 50]
    metric = harness.get_metric(name, removal=removal)
    out = metric.evaluate(model, batch, targets, harness.Attribution(tokens=scores))
    expected = [
        _reference(
            batch.tokens[i].tolist(), scores[i].tolist(), int(targets[i]), bins,
            keep_top=name.endswith("sufficiency"), delete=removal == "delete",
        )
        for i in range(len(batch))
    ]  # fmt: skip
    np.testing.assert_allclose(out.values.numpy(), expected, atol=1e-6)
    assert out.curves["probability"].shape == (6, 5)
    assert metric.higher_is_better is name.endswith("comprehensiveness")


def test_top_tokens_counts_ceil_of_the_document_and_never_padding() -> None:
    scores = torch.tensor([[0.1, 0.9, 0.9, 0.5, 5.0, 7.0]])
    valid = torch.tensor([[True, True, True, True, False, False]])
    top = top_tokens(scores, valid, [Fraction(1), Fraction(50), Fraction(100)])
    assert top[0, 0].tolist() == [False, True, False, False, False, False]  # ceil(0.04) = 1; tie
    assert top[0, 1].tolist() == [False, True, True, False, False, False]  # 2 of 4
    assert top[0, 2].tolist() == [True, True, True, True, False, False]  # padding never chosen


def test_keep_tokens_deletes_or_replaces_on_the_padding_side() -> None:
    tokens = torch.tensor([[5, 6, 7, 8, 0], [0, 0, 5, 6, 7], [5, 6, 7, 8, 9]])
    keep = torch.tensor(
        [[False, True, False, True, False], [False, False, True, False, True], [True] * 5]
    )
    assert keep_tokens(tokens, keep, 0, "delete").tolist() == [
        [6, 8, 0, 0, 0],  # right-padded: closes up to the front
        [0, 0, 0, 5, 7],  # left-padded: closes up to the end, padding stays in front
        [5, 6, 7, 8, 9],  # nothing removed: unchanged
    ]
    assert keep_tokens(tokens, keep, 0, "replace").tolist() == [
        [0, 6, 0, 8, 0], [0, 0, 5, 0, 7], [5, 6, 7, 8, 9],
    ]  # fmt: skip
    # exact counts (rows: documents of 100 and 50 tokens; columns: bins of 7 % and 14 %):
    # 7 % of 100 is 7 and 14 % of 50 is 7, where 0.07 * 100 is 7.000000000000001 in floats
    counts = token_counts([Fraction(7), Fraction(14)], torch.tensor([100, 50]))
    assert counts.tolist() == [[7, 14], [4, 7]]


def test_keeping_every_token_changes_nothing_whatever_the_padding_side() -> None:
    model, (batch, targets, scores) = _model(), _batch()
    left = torch.stack([torch.cat([t[t == PAD], t[t != PAD]]) for t in batch.tokens])
    for tokens in (batch.tokens, left):
        padded = dataclasses.replace(batch, tokens=tokens)
        for removal in ("delete", "replace"):
            metric = harness.get_metric("faithfulness.sufficiency", bins=[100], removal=removal)
            out = metric.score(model, padded, targets, harness.Attribution(tokens=scores))
            np.testing.assert_allclose(out.numpy(), 0.0, atol=1e-6)


@given(extra=st.integers(0, 6), seed=st.integers(0, 50))
def test_trailing_padding_does_not_change_deletion_scores(extra: int, seed: int) -> None:
    """Padding is not part of the document: more of it at the end leaves the bins unchanged.

    The model's position term reads ``position / L``, so the test pads a model-free copy:
    the bag part only (position weights zeroed) must give equal values.
    """
    batch, targets, scores = _batch(n=4, length=8, seed=seed)
    padded = Batch(
        ids=batch.ids, labels=targets,
        tokens=torch.nn.functional.pad(batch.tokens, (0, extra), value=PAD),
    )  # fmt: skip
    longer = torch.nn.functional.pad(scores, (0, extra), value=99.0)  # padding scored highest
    saved = POSITION.clone()
    POSITION.zero_()
    try:
        metric = harness.get_metric("faithfulness.comprehensiveness")
        a = metric.evaluate(_model(), batch, targets, harness.Attribution(tokens=scores))
        b = metric.evaluate(_model(), padded, targets, harness.Attribution(tokens=longer))
    finally:
        POSITION.copy_(saved)
    np.testing.assert_allclose(a.values.numpy(), b.values.numpy(), atol=1e-6)


def test_rationale_tokens_score_better_than_the_rest() -> None:
    """Attributions equal to the model's own token weights beat their negation on both metrics."""
    model, (batch, targets, _) = _model(), _batch(n=8, length=10, seed=3)
    own = WEIGHTS[batch.tokens, targets.view(-1, 1)].float()
    for name, better in (("faithfulness.comprehensiveness", 1), ("faithfulness.sufficiency", -1)):
        metric = harness.get_metric(name, removal="replace")
        good = metric.score(model, batch, targets, harness.Attribution(tokens=own)).mean()
        bad = metric.score(model, batch, targets, harness.Attribution(tokens=-own)).mean()
        assert better * float(good - bad) > 0


def test_parameters_are_checked() -> None:
    model, (batch, targets, scores) = _model(), _batch()
    attribution = harness.Attribution(tokens=scores)
    for params, message in (
        ({"bins": ()}, "bins=\\(\\) - expected a non-empty list of percentages"),
        ({"bins": (0, 10)}, "in \\(0, 100\\]"),
        ({"removal": "mask"}, "removal"),
        ({"bins": 10}, "bins=10 - expected a non-empty list"),
        ({"bins": ["ten"]}, "bins=\\['ten'\\] - expected"),
        ({"bins": [50, None]}, "bins=\\[50, None\\] - expected"),
    ):
        with pytest.raises(PluginError, match=message):
            harness.get_metric("faithfulness.sufficiency", **params).evaluate(
                model, batch, targets, attribution
            )


def _rationale_batch(seed: int = 2) -> tuple[Batch, Tensor, Tensor]:
    batch, targets, scores = _batch(n=6, length=10, seed=seed)
    g = torch.Generator().manual_seed(seed + 100)
    rationales = torch.rand(6, 3, 10, generator=g) < 0.35
    rationales[:, :, 0] = True  # every class has a rationale token in every document
    scores = torch.round(scores * 2) / 2  # ties between tokens
    return dataclasses.replace(batch, rationales=rationales), targets, scores


def test_rationale_auprc_equals_sklearn_on_the_document_tokens() -> None:
    from sklearn.metrics import average_precision_score

    batch, targets, scores = _rationale_batch()
    out = harness.get_metric("localisation.rationale_auprc").score(
        _model(), batch, targets, harness.Attribution(tokens=scores)
    )
    expected = []
    for i in range(len(batch)):
        doc = batch.tokens[i] != PAD  # padding is not part of the document
        truth = batch.rationales[i, targets[i]][doc]
        expected.append(average_precision_score(truth.numpy(), scores[i][doc].numpy()))
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-12)
    perfect = batch.rationales[torch.arange(6), targets].float()
    assert (
        harness.get_metric("localisation.rationale_auprc")
        .score(_model(), batch, targets, harness.Attribution(tokens=perfect))
        .tolist()
        == [1.0] * 6
    )


def test_rationale_auprc_names_rows_without_a_rationale() -> None:
    batch, targets, scores = _rationale_batch()
    rationales = batch.rationales.clone()
    rationales[2] = False
    rationales[2, :, -1] = True  # only on padding (row 2 is padded at the end)
    batch = dataclasses.replace(batch, rationales=rationales)
    with pytest.raises(DataError, match="no rationale token for sample\\(s\\) \\['d2'\\]"):
        harness.get_metric("localisation.rationale_auprc").score(
            _model(), batch, targets, harness.Attribution(tokens=scores)
        )


def test_a_document_of_padding_only_is_named() -> None:
    model, (batch, targets, scores) = _model(), _batch()
    tokens = batch.tokens.clone()
    tokens[3] = PAD
    empty = dataclasses.replace(batch, tokens=tokens)
    for name, params in (
        ("faithfulness.comprehensiveness", {}),
        ("complexity.entropy", {"over": "tokens"}),
    ):
        with pytest.raises(DataError, match="sample\\(s\\) \\['d3'\\] hold only padding"):
            harness.get_metric(name, **params).score(
                model, empty, targets, harness.Attribution(tokens=scores)
            )


def test_rows_whose_rationale_lies_on_padding_only_are_not_scored() -> None:
    """The runner scores the rows with a rationale inside the document (the metric's padding)."""
    from harness.pipeline.explaining import ExplainSet, _rows_for

    batch, targets, _ = _rationale_batch()
    rationales = batch.rationales.clone()
    rationales[2] = False
    rationales[2, :, -1] = True  # row 2 is padded at the end: a rationale on padding only
    eset = ExplainSet("k", dataclasses.replace(batch, rationales=rationales), targets)
    rows = _rows_for(harness.get_metric("localisation.rationale_auprc"), eset).tolist()
    assert rows == [0, 1, 3, 4, 5]
