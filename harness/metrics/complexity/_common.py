"""Shared pieces of the complexity metrics: the features (pixels or tokens) and their magnitudes."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
from torch import Tensor

from harness.contracts.metric import ExplanationMetric
from harness.contracts.tags import MetricKind, MetricTags, Modality, Need
from harness.errors import DataError
from harness.metrics._params import integer
from harness.metrics._tokens import feature_tags, token_inputs

if TYPE_CHECKING:
    from harness.contracts.data import Attribution, Batch
    from harness.contracts.explainer import Explainer
    from harness.contracts.model import Model

COMPLEXITY_TAGS = MetricTags(
    kind=MetricKind.COMPLEXITY,
    needs=frozenset({Need.PIXEL_ATTRIBUTIONS}),
    modalities=frozenset({Modality.IMAGE, Modality.IMAGE_TEXT}),
)


class ComplexityMetric(ExplanationMetric, abc.ABC):
    """Base of the complexity metrics: one score per row from its magnitudes over its features.

    Parameters
    ----------
    over : {"pixels", "tokens"}, default="pixels"
        Score the (N, H, W) pixel map, or the (N, L) token attributions of the
        document (text and image+text models).
    pad_token : int, default=0
        With ``over="tokens"``: the padding id; padding is not part of the document.
    """

    tags: ClassVar[MetricTags] = COMPLEXITY_TAGS

    def __init__(self, *, over: str = "pixels", pad_token: int = 0) -> None:
        self.over = over
        self.pad_token = pad_token

    def get_tags(self) -> MetricTags:
        """Pixel or token attributions, as ``over`` says."""
        return feature_tags(self.name, self.tags, self.over)

    def check_params(self) -> None:
        """Refuse an ``over`` other than "pixels" or "tokens", a ``pad_token`` that is no int."""
        self.get_tags()  # checks ``over``: the planner reads the tags before anything runs
        integer(self.name, "pad_token", self.pad_token)

    def _score(
        self,
        model: Model,
        batch: Batch,
        targets: Tensor,
        attribution: Attribution,
        explainer: Explainer | None,
    ) -> Tensor:
        a, valid = magnitudes(self.name, self.over, self.pad_token, batch, attribution)
        return self._complexity(a, valid)

    @abc.abstractmethod
    def _complexity(self, a: Tensor, valid: Tensor | None) -> Tensor:
        """Return (N,) scores of (N, P) magnitudes (zero where ``valid`` is False, if given)."""


def magnitudes(
    name: str, over: str, pad_token: int, batch: Batch, attribution: Attribution
) -> tuple[Tensor, Tensor | None]:
    """Return (N, P) absolute attributions and the valid features (None: all).

    Pixel maps keep float32 or float64 (other dtypes become float32; the metrics
    sum in float64); token scores are float64, and their rows keep their
    length: padding positions hold 0 and are marked invalid.
    """
    if over == "pixels":
        if attribution.pixels is None:
            raise DataError(f"metric {name!r}: no pixel attributions - expected (N, H, W) pixels.")
        pixels = attribution.pixels.detach().flatten(1)
        if pixels.dtype not in (torch.float32, torch.float64):
            pixels = pixels.float()
        if pixels.device.type == "cpu":  # NumPy before the sort: see harness.metrics._sorting
            return torch.from_numpy(np.abs(pixels.numpy())), None
        return pixels.abs(), None
    _, scores, valid = token_inputs(name, batch, attribution, pad_token)
    return scores.double().abs() * valid, valid
