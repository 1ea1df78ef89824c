"""Shared pieces of the complexity metrics."""

from __future__ import annotations

from torch import Tensor

from harness.contracts.data import Attribution
from harness.contracts.tags import MetricKind, MetricTags, Modality, Need
from harness.errors import DataError

COMPLEXITY_TAGS = MetricTags(
    kind=MetricKind.COMPLEXITY,
    needs=frozenset({Need.PIXEL_ATTRIBUTIONS}),
    modalities=frozenset({Modality.IMAGE, Modality.IMAGE_TEXT}),
)


def magnitudes(name: str, attribution: Attribution) -> Tensor:
    """Return the (N, P) float64 absolute attributions of each row."""
    if attribution.pixels is None:
        raise DataError(f"metric {name!r}: no pixel attributions - expected (N, H, W) pixels.")
    return attribution.pixels.flatten(1).double().abs()
