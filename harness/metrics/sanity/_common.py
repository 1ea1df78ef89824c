"""Batched similarity of attribution maps: Spearman rank correlation and SSIM (torch).

Both compare the rows of two stacks of maps and run on their device. The
second stack may carry extra leading dimensions (e.g. one stack of maps per
randomised layer, (L, N, H, W)); the first, (N, H, W), is broadcast against
it, so a reference is ranked or filtered once however many stacks it meets.
The rank correlation itself is :mod:`harness.metrics._correlation`.

Token attributions (``over="tokens"``) are compared by Spearman over each
document's tokens, padding left out; SSIM is an image similarity and is refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from harness.chunking import explain_chunk, explain_chunks
from harness.contracts.metric import ExplanationMetric, Scores
from harness.contracts.tags import MetricTags
from harness.errors import CapabilityError, PluginError
from harness.metrics._correlation import spearman_rows
from harness.metrics._params import choice, flag, integer
from harness.metrics._tokens import feature_tags as token_feature_tags

if TYPE_CHECKING:
    from harness.contracts.data import Attribution, Batch
    from harness.contracts.explainer import Explainer
    from harness.contracts.model import Model

SIMILARITIES = ("ssim", "spearman")


def feature_tags(name: str, tags: MetricTags, over: str, similarity: str) -> MetricTags:
    """Return ``tags`` for pixel maps or token scores (:func:`harness.metrics._tokens.feature_tags`).

    Token scores are compared by Spearman only: SSIM is refused here, at plan time.
    """
    out = token_feature_tags(name, tags, over)  # checks ``over``
    if over == "tokens" and similarity != "spearman":
        raise PluginError(
            f"{name}: similarity={similarity!r} with over='tokens' - expected 'spearman' (SSIM "
            "compares images).",
            plugin=name,
        )
    return out


def features(attribution: Attribution, over: str) -> Tensor | None:
    """Return the attribution's pixel maps or token scores, as ``over`` says (None if absent)."""
    return attribution.tokens if over == "tokens" else attribution.pixels


def reexplain(
    model: Model, explainer: Explainer, batch: Batch, targets: Tensor, over: str
) -> Tensor | None:
    """Explain ``batch`` for ``targets`` again and return the maps' features (``over``).

    A few rows per explainer call (:func:`~harness.chunking.explain_chunk`
    rows, halved after an out-of-memory error), so memory holds one call's
    activations, never the whole explain set's; None when a call gives no ``over``.
    """
    inputs = batch.images if batch.images is not None else batch.tokens
    shape = () if inputs is None else tuple(inputs.shape[1:])
    size = explain_chunk(model.device, shape, len(batch))
    parts, _ = explain_chunks(model, explainer, batch, targets, size)
    maps = [features(part, over) for part in parts]
    kept = [m for m in maps if m is not None]
    return torch.cat(kept) if kept and len(kept) == len(maps) else None


def valid_features(batch: Batch, over: str, pad_token: int) -> Tensor | None:
    """Return the (N, L) non-padding tokens when comparing token scores, else None (all pixels)."""
    if over != "tokens":
        return None
    if batch.tokens is None:
        raise CapabilityError("over='tokens' needs token ids in the batch")
    return batch.tokens != pad_token


def box_mean(x: Tensor, win: int) -> Tensor:
    """Mean over every ``win`` x ``win`` window fully inside the last two dimensions.

    Window sums are differences of running sums along each axis (two
    ``cumsum`` passes instead of summing ``win`` numbers per output): 2.4x
    faster than summing unfolded windows on (5, 3, 16, 28, 28) float64 stacks
    here. Equal to ``avg_pool2d(x, win, stride=1)`` up to rounding (float64
    running sums of maps scaled to max 1 lose about 1e-16 per summed value).
    """
    for dim in (-1, -2):
        pad = (1, 0) if dim == -1 else (0, 0, 1, 0)
        running = torch.nn.functional.pad(x, pad).cumsum(dim)
        size = running.shape[dim]
        x = running.narrow(dim, win, size - win) - running.narrow(dim, 0, size - win)
    return x / (win * win)


def ssim_rows(a: Tensor, b: Tensor, win_size: int = 7) -> Tensor:
    """Mean structural similarity of map pairs, as scikit-image computes it.

    ``a`` is (N, H, W); ``b`` is (N, H, W) or (..., N, H, W), compared pair by
    pair with ``a`` broadcast; returns float64 of shape ``b.shape[:-2]``.
    Matches ``skimage.metrics.structural_similarity(a, b, win_size=7,
    data_range=max(a, b) - min(a, b))``: uniform 7 x 7 windows, sample
    covariances, K1 = 0.01, K2 = 0.03, averaged over windows fully inside the
    image. The window shrinks (odd) for maps smaller than 7 px. A pair with
    zero data range (two equal constant maps) scores 1.
    """
    a, b = a.double(), b.double()
    h, w = a.shape[-2:]
    if min(h, w) < 3:
        raise CapabilityError(
            f"SSIM: maps of {h} x {w} px - expected at least 3 x 3 (the smallest window), "
            f"got {h} x {w}."
        )
    win = min(win_size, h, w)
    win = win if win % 2 == 1 else win - 1
    hi = torch.maximum(a.amax((-2, -1)), b.amax((-2, -1)))
    lo = torch.minimum(a.amin((-2, -1)), b.amin((-2, -1)))
    data_range = hi - lo
    c1 = ((0.01 * data_range) ** 2)[..., None, None]
    c2 = ((0.03 * data_range) ** 2)[..., None, None]
    ux, uxx = box_mean(torch.stack([a, a * a]), win).unbind(0)
    uy, uyy, uxy = box_mean(torch.stack([b, b * b, a * b]), win).unbind(0)
    cov_norm = win * win / (win * win - 1.0)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    numerator = (2 * ux * uy + c1) * (2 * vxy + c2)
    denominator = (ux * ux + uy * uy + c1) * (vx + vy + c2)
    s = (numerator / torch.where(denominator != 0, denominator, torch.ones_like(denominator))).mean(
        (-2, -1)
    )
    return torch.where(data_range > 0, s, torch.ones_like(s))


def rank_maps(pixels: Tensor, absolute: bool) -> Tensor:
    """Return the maps :func:`spearman_rows` should rank: absolute if asked, dtype kept.

    :func:`prepare` only divides each map by a positive peak, which keeps
    every order and tie (float64 holds each float32 ratio apart), so these
    maps have the same ranks as the prepared ones.
    """
    return pixels.abs() if absolute else pixels


def prepare(pixels: Tensor, absolute: bool) -> Tensor:
    """Return (..., H, W) maps as float64, optionally absolute, each scaled to max |a| = 1.

    The per-map scaling leaves Spearman unchanged and puts both maps of an
    SSIM pair on the same footing (Adebayo et al. normalise maps before SSIM).
    """
    x = pixels.double()
    x = x.abs() if absolute else x
    peak = (x if absolute else x.abs()).amax((-2, -1), keepdim=True)
    return x / torch.where(peak > 0, peak, torch.ones_like(peak))


def check_similarity(name: str, similarity: str) -> None:
    """Raise a PluginError unless ``similarity`` is "ssim" or "spearman"."""
    choice(name, "similarity", similarity, SIMILARITIES)


class MapComparison(ExplanationMetric):
    """Base of the sanity checks that compare a row's maps: tags and shared parameter checks.

    Subclasses store ``similarity``, ``absolute``, ``over`` and ``pad_token``;
    the tags follow ``over`` (:func:`feature_tags`) and :meth:`check_params`
    refuses an unknown similarity or ``over``, their refused combination, a
    non-bool ``absolute`` and a non-int ``pad_token``. Subclasses with more
    parameters extend :meth:`check_params`.
    """

    similarity: str
    absolute: bool
    over: str
    pad_token: int

    def get_tags(self) -> MetricTags:
        """Pixel or token attributions, as ``over`` says."""
        return feature_tags(self.name, self.tags, self.over, self.similarity)

    def check_params(self) -> None:
        """Refuse an unknown similarity or ``over``, a non-bool ``absolute``, a non-int pad."""
        check_similarity(self.name, self.similarity)
        flag(self.name, "absolute", self.absolute)
        integer(self.name, "pad_token", self.pad_token)
        self.get_tags()


def compare_maps(
    reference: Tensor, maps: Tensor, similarity: str, absolute: bool, valid: Tensor | None = None
) -> Scores:
    """Score each row's pair of (N, H, W) maps by ``similarity`` (both :func:`prepare`-d).

    "ssim": :func:`ssim_rows`; "spearman": :func:`spearman_rows`, with the
    fraction of undefined (constant-map) pairs in ``notes``. ``valid`` (token
    scores (N, L)): Spearman over the valid positions only.
    """
    maps = maps.to(reference.device)
    if similarity == "ssim":
        return Scores(values=ssim_rows(prepare(reference, absolute), prepare(maps, absolute)))
    rho, defined = spearman_rows(
        rank_maps(reference, absolute), rank_maps(maps, absolute), valid=valid
    )
    return Scores(
        values=rho, notes={"undefined_spearman_fraction": float((~defined).double().mean())}
    )
