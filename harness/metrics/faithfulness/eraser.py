"""Comprehensiveness and sufficiency of token attributions (ERASER, DeYoung et al. 2020)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor

from harness.contracts import Attribution, Batch, ExplanationMetric, MetricTags, Model, Scores
from harness.contracts.tags import MetricKind, Modality, Need
from harness.errors import PluginError
from harness.metrics import _engine
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


def top_tokens(scores: Tensor, valid: Tensor, fractions: Sequence[float]) -> Tensor:
    """Return (N, B, L) bool: each row's ``ceil(f * length)`` highest-scored valid tokens per bin.

    ``length`` is the row's number of valid (non-padding) tokens; ties keep
    token order (stable sort); padding is never selected.
    """
    order_scores = scores.masked_fill(~valid, -math.inf)
    rank = C.ranks(order_scores, descending=True).long()
    length = valid.sum(dim=1, keepdim=True)
    frac = torch.tensor(list(fractions), device=scores.device, dtype=torch.float64)
    counts = torch.ceil(frac.view(1, -1) * length.double()).long().clamp(max=length)
    return (rank.unsqueeze(1) < counts.unsqueeze(-1)) & valid.unsqueeze(1)


def keep_tokens(tokens: Tensor, keep: Tensor, pad: int, removal: str) -> Tensor:
    """Return ``tokens`` (M, L) with the tokens outside ``keep`` removed.

    ``"delete"`` drops them and moves the kept tokens to the front in their
    order, padding the end (ERASER: the model reads a shorter document);
    ``"replace"`` writes ``pad`` in their place (the layout is unchanged).
    """
    if removal == "replace":
        return torch.where(keep, tokens, torch.full_like(tokens, pad))
    order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)
    moved = tokens.gather(1, order)
    filled = torch.arange(tokens.shape[1], device=tokens.device) < keep.sum(1, keepdim=True)
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

    version: ClassVar[str] = "1"
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

    def _fractions(self) -> list[float]:
        values = list(self.bins)
        if not values or any(not 0 < float(b) <= 100 for b in values):
            raise PluginError(
                f"metric {self.name!r}: parameter bins={self.bins!r} - expected a non-empty "
                "list of percentages in (0, 100].",
                plugin=self.name,
            )
        return [float(b) / 100 for b in values]

    @_engine.engine_scope
    def _score(
        self,
        model: Model,
        batch: Batch,
        targets: Tensor,
        attribution: Attribution,
        explainer: Explainer | None,
    ) -> Scores:
        fractions = self._fractions()
        removal = C.choice(self.name, "removal", self.removal, REMOVALS)
        output = C.choice(self.name, "output", self.output, ("probability", "logit"))
        tokens, scores, valid = token_inputs(self.name, batch, attribution, self.pad_token)
        top = top_tokens(scores.float(), valid, fractions)
        keep = top if self.keep_rationale else valid.unsqueeze(1) & ~top
        steps = len(fractions)

        def make(flat: Tensor) -> Tensor:
            rows = torch.div(flat, steps, rounding_mode="floor")
            chosen = keep[rows, flat % steps]
            return keep_tokens(tokens[rows], chosen, self.pad_token, removal)

        curve = _engine.evaluate(
            model, batch, targets, steps, make, output=output, perturbs="tokens"
        )
        drops = C.clean_column(model, batch, targets, output, curve) - curve
        return Scores(values=C.aopc(drops), curves={output: curve})


class Comprehensiveness(_TokenRemoval):
    """Drop of the target probability when the top-ranked tokens are removed (ERASER AOPC).

    For each bin ``b`` (a percentage), the rationale ``r_b`` is the top
    ``ceil(b / 100 * length)`` tokens by attribution (``length``: the tokens
    other than ``pad_token``; ties keep token order). The model scores the
    document without ``r_b``, and the value is ERASER's area over the
    perturbation curve ``1 / (|B| + 1) * sum_{b in {0} + B} (p(x) - p(x without r_b))``
    (the empty bin adds zero). A faithful attribution names the tokens the
    prediction needs, so the probability falls: higher is better.

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
    ``r_b`` alone, and the value is ERASER's area over the perturbation curve
    ``1 / (|B| + 1) * sum_{b in {0} + B} (p(x) - p(r_b))`` (the empty bin adds
    zero). A faithful attribution's tokens alone keep the prediction, so the
    probability hardly falls: lower is better (negative when the rationale
    alone is more convincing than the document).

    References
    ----------
    DeYoung et al. "ERASER: A Benchmark to Evaluate Rationalized NLP Models." ACL 2020.
    """

    name: ClassVar[str] = "faithfulness.sufficiency"
    higher_is_better: ClassVar[bool] = False
    keep_rationale: ClassVar[bool] = True
