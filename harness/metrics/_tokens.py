"""Token inputs of the token-level metrics: ids, scores and the document's (non-padding) tokens.

Metrics that score pixel maps or token scores alike take ``over`` ("pixels"
or "tokens"); :func:`feature_tags` gives the tags the planner reads for it.
"""

from __future__ import annotations

from dataclasses import replace

from torch import Tensor

from harness.contracts.data import Attribution, Batch
from harness.contracts.tags import MetricTags, Modality, Need
from harness.errors import DataError
from harness.metrics._params import choice

FEATURES = ("pixels", "tokens")


def feature_tags(name: str, tags: MetricTags, over: str) -> MetricTags:
    """Return pixel-map ``tags``, or their token version (token scores, text and image+text).

    ``over`` is checked here: the planner reads the tags before anything runs.
    """
    if choice(name, "over", over, FEATURES) == "pixels":
        return tags
    needs = (tags.needs - {Need.PIXEL_ATTRIBUTIONS}) | {Need.TOKEN_ATTRIBUTIONS}
    return replace(tags, needs=needs, modalities=frozenset({Modality.TEXT, Modality.IMAGE_TEXT}))


def token_inputs(
    name: str, batch: Batch, attribution: Attribution, pad_token: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Return (token ids (N, L), token scores (N, L), valid (N, L): not ``pad_token``) or raise.

    A document of padding only has nothing to score: a DataError names it.
    """
    tokens, scores = batch.tokens, attribution.tokens
    if tokens is None or scores is None:
        raise DataError(
            f"metric {name!r}: needs token ids and token attributions - expected both, got "
            f"tokens={tokens is not None}, attributions={scores is not None}."
        )
    if tuple(scores.shape) != tuple(tokens.shape):
        raise DataError(
            f"metric {name!r}: token attributions of shape {tuple(scores.shape)} for token ids "
            f"{tuple(tokens.shape)} - expected equal (N, L) shapes."
        )
    tokens = tokens.to(scores.device)
    valid = tokens != pad_token
    empty = ~valid.any(dim=1)
    if bool(empty.any()):
        ids = [batch.ids[i] for i in empty.nonzero().flatten().tolist()]
        raise DataError(
            f"metric {name!r}: sample(s) {ids} hold only padding (token {pad_token}) - expected "
            "at least one token per scored document."
        )
    return tokens, scores, valid
