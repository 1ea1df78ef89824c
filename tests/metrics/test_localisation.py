"""Localisation metrics: agreement with Quantus 0.6, scikit-learn / scikit-image, hand cases."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from _toys_a import InputXGradient, blob_batch, random_maps, single_thread, tiny_model
from sklearn.metrics import average_precision_score

import harness
from harness.contracts import Attribution, Batch
from harness.errors import DataError

quantus = pytest.importorskip("quantus")


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


@pytest.fixture(scope="module")
def case() -> tuple:
    batch, targets = blob_batch(n=12, size=32, classes=3, seed=1)
    return tiny_model(classes=3), batch, targets


def _ours(name: str, model, batch: Batch, targets, pixels: torch.Tensor, **params) -> np.ndarray:
    metric = harness.get_metric(name, **params)
    return metric.score(model, batch, targets, Attribution(pixels=pixels)).numpy()


def _quantus(metric, model, batch: Batch, targets, pixels: torch.Tensor) -> np.ndarray:
    s = batch.target_masks(targets).numpy()[:, None].astype(np.float64)
    out = metric(
        model=model.module,
        x_batch=batch.images.numpy(),
        y_batch=targets.numpy(),
        a_batch=pixels.double().numpy()[:, None].copy(),
        s_batch=s,
        channel_first=True,
    )
    return np.asarray(out, dtype=np.float64)


def _maps(model, batch, targets) -> dict[str, torch.Tensor]:
    """Tie-free maps: signed random, input x gradient, and non-negative random."""
    ixg = InputXGradient().explain(model, batch, targets).pixels
    rnd = random_maps(len(batch), 32, seed=5)
    return {"random": rnd, "input_x_gradient": ixg, "positive": rnd.abs()}


# Tolerance: Quantus works on the float64 copies we pass; differences are summation order only.
ATOL = 1e-9


def test_pointing_game_matches_quantus(case) -> None:
    model, batch, targets = case
    q = quantus.PointingGame(abs=False, normalise=False, disable_warnings=True)
    for pixels in _maps(model, batch, targets).values():
        np.testing.assert_allclose(
            _ours("localisation.pointing_game", model, batch, targets, pixels),
            _quantus(q, model, batch, targets, pixels).astype(float),
        )


def test_relevance_mass_matches_quantus(case) -> None:
    model, batch, targets = case
    q = quantus.RelevanceMassAccuracy(abs=False, normalise=False, disable_warnings=True)
    maps = _maps(model, batch, targets)
    # Signed sums (positive_only=False) equal Quantus on every map.
    for pixels in maps.values():
        np.testing.assert_allclose(
            _ours(
                "localisation.relevance_mass", model, batch, targets, pixels, positive_only=False
            ),
            _quantus(q, model, batch, targets, pixels),
            atol=ATOL,
            rtol=1e-9,
        )
    # The default follows Arras et al. (positive relevance only): equal to Quantus on the
    # positive part of the map; Quantus on signed maps differs (and can leave [0, 1]).
    pos = maps["input_x_gradient"].clamp(min=0)
    np.testing.assert_allclose(
        _ours("localisation.relevance_mass", model, batch, targets, maps["input_x_gradient"]),
        _quantus(q, model, batch, targets, pos),
        atol=ATOL,
    )


def test_relevance_rank_matches_quantus(case) -> None:
    model, batch, targets = case
    q = quantus.RelevanceRankAccuracy(abs=False, normalise=False, disable_warnings=True)
    for pixels in _maps(model, batch, targets).values():
        np.testing.assert_allclose(
            _ours(
                "localisation.relevance_rank", model, batch, targets, pixels, positive_only=False
            ),
            _quantus(q, model, batch, targets, pixels),
            atol=ATOL,
        )
    positive = _maps(model, batch, targets)["positive"]
    np.testing.assert_allclose(
        _ours("localisation.relevance_rank", model, batch, targets, positive),
        _quantus(q, model, batch, targets, positive),
        atol=ATOL,
    )


def test_attribution_localisation_matches_quantus(case) -> None:
    model, batch, targets = case
    # Kohlbrenner et al. use positive relevance; Quantus's default abs=True (magnitudes) is
    # a deliberate difference, so compare with positive_attributions=True, abs=False.
    q = quantus.AttributionLocalisation(
        abs=False, positive_attributions=True, normalise=False, disable_warnings=True
    )
    for pixels in _maps(model, batch, targets).values():
        np.testing.assert_allclose(
            _ours("localisation.attribution_localisation", model, batch, targets, pixels),
            _quantus(q, model, batch, targets, pixels),
            rtol=1e-6,  # Quantus adds 1e-9 to the denominator
        )


@pytest.mark.parametrize("k", [1, 50, 300])
def test_top_k_intersection_matches_quantus(case, k: int) -> None:
    model, batch, targets = case
    q = quantus.TopKIntersection(k=k, abs=False, normalise=False, disable_warnings=True)
    for pixels in _maps(model, batch, targets).values():
        np.testing.assert_allclose(
            _ours("localisation.top_k_intersection", model, batch, targets, pixels, k=k),
            _quantus(q, model, batch, targets, pixels),
            atol=ATOL,
        )


def test_auprc_matches_sklearn_with_ties(case) -> None:
    model, batch, targets = case
    masks = batch.target_masks(targets).flatten(1).numpy()
    maps = _maps(model, batch, targets)
    maps["quantised"] = (maps["random"] * 3).round()  # many ties
    for pixels in maps.values():
        ours = _ours("localisation.auprc", model, batch, targets, pixels)
        ref = [
            average_precision_score(m, p)
            for m, p in zip(masks, pixels.flatten(1).double().numpy(), strict=True)
        ]
        np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_iou_otsu_matches_skimage(case) -> None:
    from skimage.filters import threshold_otsu

    model, batch, targets = case
    masks = batch.target_masks(targets).flatten(1).numpy()
    for pixels in _maps(model, batch, targets).values():
        ours = _ours("localisation.iou", model, batch, targets, pixels)
        ref = []
        for m, a in zip(masks, pixels.flatten(1).numpy(), strict=True):
            # CheXlocalize: min-max to 0..255 uint8, Otsu, foreground = levels > t
            norm = (a - a.min()) / (a.max() - a.min())
            levels = np.floor(norm * 255).astype(np.uint8)
            pred = levels > threshold_otsu(levels)
            ref.append((pred & m).sum() / (pred | m).sum())
        np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_iou_fixed_threshold_and_hit_rate_hand_computed() -> None:
    model = tiny_model(classes=1)
    mask = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    mask[0, 0, :2, :2] = True
    batch = Batch(ids=("a",), labels=torch.tensor([0]), images=torch.zeros(1, 1, 4, 4), masks=mask)
    t = torch.tensor([0])
    a = torch.zeros(1, 4, 4)
    a[0, 0, :3] = torch.tensor([1.0, 0.8, 0.6])  # normalised: 1, .8, .6 on row 0
    a[0, 3, 3] = 0.9
    # threshold 0.7: pred = {(0,0), (0,1), (3,3)}; mask = 4 pixels; inter 2; union 5
    assert _ours("localisation.iou", model, batch, t, a, threshold=0.7)[0] == pytest.approx(2 / 5)
    assert _ours("localisation.hit_rate", model, batch, t, a)[0] == 1.0
    a2 = a.clone()
    a2[0, 3, 3] = 2.0
    assert _ours("localisation.hit_rate", model, batch, t, a2)[0] == 0.0
    assert (
        _ours(
            "localisation.hit_rate",
            model,
            batch,
            t,
            a,
            criterion="iou",
            threshold=0.7,
            iou_cutoff=0.3,
        )[0]
        == 1.0
    )


def test_pointing_game_tolerance_and_ties() -> None:
    model = tiny_model(classes=1)
    mask = torch.zeros(1, 1, 9, 9, dtype=torch.bool)
    mask[0, 0, 4, 4] = True
    batch = Batch(ids=("a",), labels=torch.tensor([0]), images=torch.zeros(1, 1, 9, 9), masks=mask)
    t = torch.tensor([0])
    a = torch.zeros(1, 9, 9)
    a[0, 4, 6] = 1.0  # 2 px right of the mask
    assert _ours("localisation.pointing_game", model, batch, t, a)[0] == 0.0
    assert _ours("localisation.pointing_game", model, batch, t, a, tolerance=1)[0] == 0.0
    assert _ours("localisation.pointing_game", model, batch, t, a, tolerance=2)[0] == 1.0
    a[0, 6, 6] = 1.0  # distance sqrt(8) > 2: one of two tied maxima hits
    assert _ours("localisation.pointing_game", model, batch, t, a, tolerance=2)[0] == 0.5


def test_relevance_rank_ties_count_by_expected_share() -> None:
    model = tiny_model(classes=1)
    mask = torch.zeros(1, 1, 2, 4, dtype=torch.bool)
    mask[0, 0, 0, :2] = True  # K = 2
    batch = Batch(ids=("a",), labels=torch.tensor([0]), images=torch.zeros(1, 1, 2, 4), masks=mask)
    a = torch.tensor([[[1.0, 0.5, 0.5, 0.0], [0.5, 0.0, 0.0, 0.0]]])
    # top-1 = (0,0) in mask; the 2nd slot is shared by 3 tied 0.5s, one in the mask -> 1 + 1/3
    got = _ours("localisation.relevance_rank", model, batch, torch.tensor([0]), a)[0]
    assert got == pytest.approx((1 + 1 / 3) / 2)


@pytest.mark.parametrize("name", NAMES)
def test_empty_mask_raises_naming_sample(case, name: str) -> None:
    model, batch, targets = case
    masks = batch.masks.clone()
    masks[3, targets[3]] = False
    bad = Batch(ids=batch.ids, labels=batch.labels, images=batch.images, masks=masks)
    with pytest.raises(DataError, match="s3"):
        harness.get_metric(name).score(model, bad, targets, Attribution(pixels=random_maps(12, 32)))


@pytest.mark.parametrize("name", NAMES)
def test_mask_scores_best_random_worse(name: str) -> None:
    model = tiny_model(classes=3)
    batch, targets = blob_batch(n=16, size=32, classes=3, seed=7)
    masks = batch.target_masks(targets).float()
    # top-k at k <= the smallest mask (49 px here), so its ceiling is 1 like the others
    params = {"k": 40} if name == "localisation.top_k_intersection" else {}
    metric = harness.get_metric(name, **params)
    best = metric.score(model, batch, targets, Attribution(pixels=masks))
    noise = torch.rand(16, 32, 32, generator=torch.Generator().manual_seed(0))
    rand = metric.score(model, batch, targets, Attribution(pixels=noise))
    assert torch.allclose(best, torch.ones_like(best))
    # binary metrics (pointing game, hit rate) can hit by chance on single rows
    assert bool((best >= rand).all()) and float(best.mean()) > float(rand.mean()) + 0.3, (
        best,
        rand,
    )


def test_top_k_rejects_a_k_that_is_not_a_positive_integer(case) -> None:
    from harness.errors import PluginError

    model, batch, targets = case
    for k in (0, -3, 2.5):
        with pytest.raises(PluginError, match=f"parameter k={k!r} - expected a positive integer"):
            _ours(
                "localisation.top_k_intersection", model, batch, targets, random_maps(12, 32), k=k
            )


def test_signed_relevance_mass_is_unbounded_so_none_are_declared(case) -> None:
    model, batch, targets = case
    inside = batch.target_masks(targets)[:1]
    pixels = torch.where(inside, 1.0, 0.0)
    pixels[~inside] = -(inside.sum() - 0.01) / (~inside).sum()  # the signed total is 0.01
    value = _ours(
        "localisation.relevance_mass", model, batch.index(torch.tensor([0])), targets[:1], pixels,
        positive_only=False,
    )[0]  # fmt: skip
    assert value == pytest.approx(float(inside.sum()) / 0.01, rel=1e-3) and value > 1
    assert harness.get_metric("localisation.relevance_mass").bounds is None
