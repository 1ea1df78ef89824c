"""Invariances of the localisation metrics (hypothesis): rows are independent, scale is ignored."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from _toys_a import blob_batch, single_thread, tiny_model
from hypothesis import given, settings
from hypothesis import strategies as st

import harness
from harness.contracts import Attribution


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    yield from single_thread()


NAMES = [
    "localisation.pointing_game",
    "localisation.relevance_mass",
    "localisation.relevance_rank",
    "localisation.attribution_localisation",
    "localisation.top_k_intersection",
    "localisation.auprc",
    "localisation.iou",
    "localisation.hit_rate",
]
MODEL = tiny_model(classes=3)
BATCH, TARGETS = blob_batch(n=6, size=16, classes=3, seed=4)
METRICS = {name: harness.get_metric(name) for name in NAMES}
METRICS["localisation.top_k_intersection"] = harness.get_metric(
    "localisation.top_k_intersection", k=20
)


def _maps(seed: int, quantised: bool) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    maps = torch.randn(6, 16, 16, generator=g) + 2 * BATCH.target_masks(TARGETS).float()
    return maps.round() if quantised else maps  # rounding makes many ties


def _score(name: str, rows: list[int], pixels: torch.Tensor) -> np.ndarray:
    idx = torch.as_tensor(rows)
    return (
        METRICS[name]
        .score(MODEL, BATCH.index(idx), TARGETS[idx], Attribution(pixels=pixels))
        .numpy()
    )


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    quantised=st.booleans(),
    perm=st.permutations(range(6)),
    size=st.integers(1, 6),
    scale=st.floats(1e-3, 1e3),
)
def test_rows_independent_and_scale_invariant(
    name: str, seed: int, quantised: bool, perm: list[int], size: int, scale: float
) -> None:
    pixels = _maps(seed, quantised)
    full = _score(name, list(range(6)), pixels)
    assert np.all(np.isfinite(full))
    assert np.all((full >= -1e-12) & (full <= 1 + 1e-12))
    rows = perm[:size]
    np.testing.assert_allclose(_score(name, rows, pixels[rows]), full[rows], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        _score(name, list(range(6)), pixels * scale), full, rtol=1e-6, atol=1e-9
    )
