"""Comprehensiveness and sufficiency of token attributions (ERASER, DeYoung et al. 2020)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor

from harness.contracts import Attribution, Batch, ExplanationMetric, MetricTags, Model, Scores
from harness.contracts.tags import MetricKind, Modality, Need
from harness.metrics import _engine
from harness.metrics._params import integer, percentages
from harness.metrics._tokens import token_inputs
from harness.metrics.faithfulness import _common as C

if TYPE_CHECKING:
    from harness.contracts import Explainer

REMOVALS = ("delete", "replace")
_TAGS = MetricTags(
    kind=MetricKind.FAITHFULNESS,
    needs=frozenset({Need.TOKEN_ATTRIBUTIONS}),
    modalities=frozenset({Modality.TEXT, Modality.IMAGE_TEXT}),
)


def token_counts(percentages: Sequence[Fraction], lengths: Tensor) -> Tensor:
    """Return (N, B) ``ceil(b / 100 * length)`` in exact arithmetic (``0.07 * 100`` is not 7)."""
    top = int(lengths.max()) if len(lengths) else 0
    table = torch.tensor(
        [[math.ceil(b * n / 100) for n in range(top + 1)] for b in percentages],
        dtype=torch.long,
        device=lengths.device,
    )  # (B, max length + 1): a few thousand integers
    return table[:, lengths].T.contiguous()


def top_tokens(scores: Tensor, valid: Tensor, percentages: Sequence[Fraction]) -> Tensor:
    """Return (N, B, L) bool: each row's ``ceil(b / 100 * length)`` highest-scored valid tokens.

    ``length`` is the row's number of valid (non-padding) tokens; ties keep
    token order (stable sort); padding is never selected.
    """
    order_scores = scores.masked_fill(~valid, -math.inf)
    rank = C.ranks(order_scores, descending=True).long()
    counts = token_counts(percentages, valid.sum(dim=1))
    return (rank.unsqueeze(1) < counts.unsqueeze(-1)) & valid.unsqueeze(1)


def keep_tokens(tokens: Tensor, keep: Tensor, pad: int, removal: str) -> Tensor:
    """Return ``tokens`` (M, L) with the document tokens outside ``keep`` removed.

    ``keep`` marks the document tokens to keep; padding stays where it is.
    ``"delete"`` drops the others and closes up what remains in order, the
    freed places becoming padding on the document's padding side (the front
    for a row that starts with padding, else the end): ERASER's shorter
    document. ``"replace"`` writes ``pad`` in their place (the layout is
    unchanged, e.g. for text laid out as an image).
    """
    removed = (tokens != pad) & ~keep
    if removal == "replace":
        return tokens.masked_fill(removed, pad)
    left = tokens[:, :1] == pad  # left-padded rows close up to the end
    last = torch.where(left, ~removed, removed)  # what the stable sort puts last
    moved = tokens.gather(1, torch.argsort(last.to(torch.int8), dim=1, stable=True))
    kept = (~removed).sum(1, keepdim=True)
    positions = torch.arange(tokens.shape[1], device=tokens.device)
    filled = torch.where(left, positions >= tokens.shape[1] - kept, positions < kept)
    return torch.where(filled, moved, torch.full_like(moved, pad))


class _TokenRemoval(ExplanationMetric):
    """Base of comprehensiveness and sufficiency: token removal by attribution rank, per bin.

    Removed tokens are deleted (the kept ones close up and the end is padded)
    or replaced by ``pad_token``. The curve holds the target score per bin.

    Parameters
    ----------
    bins : sequence of float, default=(1, 5, 10, 20, 50)
        Percentages of the document's tokens in the rationale (ERASER's bins).
    removal : {"delete", "replace"}, default="delete"
        Delete removed tokens (ERASER) or write ``pad_token`` in their place
        (keeps positions, e.g. for text laid out as an image).
    pad_token : int, default=0
        The padding id: padding is never ranked, counted or kept.
    output : {"probability", "logit"}, default="probability"
        Score of the target class.
    """

    version: ClassVar[str] = "2"  # 2: the mean over the bins (ERASER's scorer), was / (|B| + 1)
    bounds: ClassVar[tuple[float, float] | None] = None
    citation: ClassVar[str] = (
        "DeYoung, Jain, Rajani, Lehman, Xiong, Socher, Wallace. ERASER: A Benchmark to "
        "Evaluate Rationalized NLP Models. ACL 2020."
    )
    tags: ClassVar[MetricTags] = _TAGS
    keep_rationale: ClassVar[bool]

    def __init__(
        self,
        *,
        bins: Sequence[float] = (1, 5, 10, 20, 50),
        removal: str = "delete",
        pad_token: int = 0,
        output: str = "probability",
    ) -> None:
        self.bins = bins
        self.removal = removal
        self.pad_token = pad_token
        self.output = output

    def _percentages(self) -> list[Fraction]:
        """Return the bins as exact fractions, or raise a PluginError naming them."""
        return percentages(self.name, "bins", self.bins, "(0, 100]", 0, 100, "percentages")

    def check_params(self) -> None:
        """Refuse empty bins or bins outside (0, 100], an unknown removal or output."""
        self._percentages()
        C.choice(self.name, "removal", self.removal, REMOVALS)
        C.choice(self.name, "output", self.output, ("probability", "logit"))
        integer(self.name, "pad_token", self.pad_token)

    @_engine.engine_scope
    def _score(
        self,
        model: Model,
        batch: Batch,
        targets: Tensor,
        attribution: Attribution,
        explainer: Explainer | None,
    ) -> Scores:
        bins, removal, output = self._percentages(), self.removal, self.output
        tokens, scores, valid = token_inputs(self.name, batch, attribution, self.pad_token)
        top = top_tokens(scores, valid, bins)
        keep = top if self.keep_rationale else valid.unsqueeze(1) & ~top
        steps = len(bins)

        def make(flat: Tensor) -> Tensor:
            rows = torch.div(flat, steps, rounding_mode="floor")
            chosen = keep[rows, flat % steps]
            return keep_tokens(tokens[rows], chosen, self.pad_token, removal)

        curve = _engine.evaluate(
            model, batch, targets, steps, make, output=output, perturbs="tokens"
        )
        drops = C.clean_column(model, batch, targets, output, curve) - curve
        return Scores(values=drops.mean(dim=1), curves={output: curve})


class Comprehensiveness(_TokenRemoval):
    """Drop of the target probability when the top-ranked tokens are removed (ERASER AOPC).

    For each bin ``b`` (a percentage), the rationale ``r_b`` is the top
    ``ceil(b / 100 * length)`` tokens by attribution (``length``: the tokens
    other than ``pad_token``; ties keep token order). The model scores the
    document without ``r_b``, and the value is the mean over the bins of
    ``p(x) - p(x without r_b)``, as ERASER's scorer computes its AOPC (the
    paper prints ``1 / (|B| + 1)`` with an empty bin, which gives 5/6 of these
    values for 5 bins; published ERASER tables come from the scorer). A
    faithful attribution names the tokens the prediction needs, so the
    probability falls: higher is better.

    References
    ----------
    DeYoung et al. "ERASER: A Benchmark to Evaluate Rationalized NLP Models." ACL 2020.
    """

    name: ClassVar[str] = "faithfulness.comprehensiveness"
    higher_is_better: ClassVar[bool] = True
    keep_rationale: ClassVar[bool] = False


class Sufficiency(_TokenRemoval):
    """Drop of the target probability when only the top-ranked tokens are kept (ERASER AOPC).

    For each bin ``b`` (a percentage), the rationale ``r_b`` is the top
    ``ceil(b / 100 * length)`` tokens by attribution (``length``: the tokens
    other than ``pad_token``; ties keep token order). The model scores
    ``r_b`` alone, and the value is the mean over the bins of
    ``p(x) - p(r_b)``, as ERASER's scorer computes its AOPC (see
    :class:`Comprehensiveness`). A faithful attribution's tokens alone keep
    the prediction, so the probability hardly falls: lower is better (negative
    when the rationale alone is more convincing than the document).

    References
    ----------
    DeYoung et al. "ERASER: A Benchmark to Evaluate Rationalized NLP Models." ACL 2020.
    """

    name: ClassVar[str] = "faithfulness.sufficiency"
    higher_is_better: ClassVar[bool] = False
    keep_rationale: ClassVar[bool] = True
