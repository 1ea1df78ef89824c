"""Complexity metrics: Quantus 0.6 agreement, hand cases, invariances (hypothesis)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from _toys_a import InputXGradient, blob_batch, random_maps, single_thread, tiny_model
from hypothesis import given, settings
from hypothesis import strategies as st

import harness
from harness.contracts import Attribution, Need

quantus = pytest.importorskip("quantus")


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    yield from single_thread()


MODEL = tiny_model(classes=3)
BATCH, TARGETS = blob_batch(n=10, size=32, classes=3, seed=2)


def _ours(name: str, pixels: torch.Tensor) -> np.ndarray:
    return (
        harness.get_metric(name)
        .score(
            MODEL,
            BATCH.index(range(len(pixels))),
            TARGETS[: len(pixels)],
            Attribution(pixels=pixels),
        )
        .numpy()
    )


def _quantus(metric, pixels: torch.Tensor) -> np.ndarray:
    n = len(pixels)
    out = metric(
        model=MODEL.module,
        x_batch=BATCH.images[:n].numpy(),
        y_batch=TARGETS[:n].numpy(),
        a_batch=pixels.double().numpy()[:, None].copy(),
        channel_first=True,
    )
    return np.asarray(out, dtype=np.float64)


def _maps() -> list[torch.Tensor]:
    ixg = InputXGradient().explain(MODEL, BATCH, TARGETS).pixels
    return [
        random_maps(10, 32, seed=3),
        ixg,
        BATCH.target_masks(TARGETS).float() + 0.01 * random_maps(10, 32).abs(),
    ]


def test_sparseness_matches_quantus() -> None:
    q = quantus.Sparseness(abs=True, normalise=False, disable_warnings=True)
    for pixels in _maps():
        # Quantus adds 1e-7 to |a| before the index (scaling G by S / (S + P 1e-7)); give
        # ours the same shifted magnitudes and the two agree to rounding.
        magnitudes = pixels.double().abs()
        ours = _ours("complexity.sparseness", magnitudes + 1e-7)
        np.testing.assert_allclose(ours, _quantus(q, magnitudes), rtol=1e-9)


def test_entropy_matches_quantus() -> None:
    q = quantus.Complexity(abs=True, normalise=False, disable_warnings=True)
    for pixels in _maps():
        np.testing.assert_allclose(
            _ours("complexity.entropy", pixels), _quantus(q, pixels), atol=1e-7
        )


def test_hand_computed() -> None:
    spike = torch.zeros(1, 2, 2)
    spike[0, 0, 0] = -3.0
    uniform = torch.full((1, 2, 2), 0.5)
    zeros = torch.zeros(1, 2, 2)
    halves = torch.tensor([[[1.0, 1.0], [0.0, 0.0]]])
    assert _ours("complexity.sparseness", spike)[0] == pytest.approx(1 - 1 / 4)
    assert _ours("complexity.sparseness", uniform)[0] == pytest.approx(0.0)
    assert _ours("complexity.sparseness", zeros)[0] == 0.0
    # sorted [0, 0, 1, 1]: sum (2k - 5) v = (1)(1) + (3)(1) = 4; / (4 * 2) = 0.5
    assert _ours("complexity.sparseness", halves)[0] == pytest.approx(0.5)
    assert _ours("complexity.entropy", spike)[0] == pytest.approx(0.0)
    assert _ours("complexity.entropy", uniform)[0] == pytest.approx(math.log(4))
    assert _ours("complexity.entropy", zeros)[0] == pytest.approx(math.log(4))
    assert _ours("complexity.entropy", halves)[0] == pytest.approx(math.log(2))


maps = st.integers(0, 2**31 - 1).map(lambda s: random_maps(4, 8, seed=s))


@settings(max_examples=25, deadline=None)
@given(maps, st.floats(1e-3, 1e3), st.permutations(range(4)))
def test_scale_sign_and_batch_invariance(
    pixels: torch.Tensor, scale: float, perm: list[int]
) -> None:
    for name in ("complexity.sparseness", "complexity.entropy"):
        base = _ours(name, pixels)
        np.testing.assert_allclose(_ours(name, pixels * scale), base, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(_ours(name, -pixels), base, rtol=1e-9)
        np.testing.assert_allclose(_ours(name, pixels[perm]), base[perm], rtol=1e-12)
        np.testing.assert_allclose(_ours(name, pixels[:1]), base[:1], rtol=1e-12)


@given(seed=st.integers(0, 10_000), pad=st.integers(0, 5))
@settings(max_examples=25, deadline=None)
def test_token_complexity_leaves_padding_out(seed: int, pad: int) -> None:
    """Over tokens: the scores of the document's tokens alone, whatever padding follows."""
    g = torch.Generator().manual_seed(seed)
    lengths = [7, 3, 5]
    tokens = torch.zeros(3, 7 + pad, dtype=torch.long)
    scores = torch.randn(3, 7 + pad, generator=g)
    for i, n in enumerate(lengths):
        tokens[i, :n] = torch.randint(1, 9, (n,), generator=g)
    scores[1, :3] = 0.0  # an all-zero document: uniform entropy over its 3 tokens
    batch = harness.Batch(ids=("a", "b", "c"), labels=torch.zeros(3).long(), tokens=tokens)
    attribution = Attribution(tokens=scores)
    for name in ("complexity.sparseness", "complexity.entropy"):
        metric = harness.get_metric(name, over="tokens")
        assert Need.TOKEN_ATTRIBUTIONS in metric.get_tags().needs
        got = metric.score(MODEL, batch, torch.zeros(3).long(), attribution).numpy()
        for i, n in enumerate(lengths):
            a = scores[i, :n].double().abs().numpy()
            if name.endswith("sparseness"):
                s = np.sort(a)
                k = np.arange(1, n + 1)
                want = 0.0 if a.sum() == 0 else ((2 * k - n - 1) * s).sum() / (n * s.sum())
            else:
                p = a / a.sum() if a.sum() > 0 else np.full(n, 1 / n)
                want = -(p[p > 0] * np.log(p[p > 0])).sum()
            assert got[i] == pytest.approx(want, abs=1e-12), (name, i)
    with pytest.raises(harness.CapabilityError, match="needs token attributions"):
        harness.get_metric("complexity.entropy", over="tokens").score(
            MODEL, BATCH.index([0]), TARGETS[:1], Attribution(pixels=random_maps(1, 32))
        )
    with pytest.raises(harness.PluginError, match="over='words'"):
        harness.get_metric("complexity.entropy", over="words").score(
            MODEL, batch, torch.zeros(3).long(), attribution
        )
