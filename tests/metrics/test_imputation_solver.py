"""ROAD's batched linear imputation against a direct sparse solve, on its hardest inputs.

The reference builds the system of Rong et al. (each removed pixel is the
weighted mean of its in-image neighbours, 1/6 direct, 1/12 diagonal) as a
scipy sparse matrix and calls ``spsolve``, one image and channel at a time.
Tolerances: float64 input is solved to a relative residual of 1e-7 and must
agree to 1e-6; float32 input (relative residual 1e-5, the float32 limit for
these systems) to 2e-4 on values in [0, 1] (the largest errors seen: 2e-7 and 3e-5).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.metrics.faithfulness._imputation import linear_imputation

ATOL = {torch.float64: 1e-6, torch.float32: 2e-4}


def spsolve_reference(image: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """Exact imputation of one (C, H, W) image for a (H, W) boolean mask."""
    from scipy.sparse import lil_matrix
    from scipy.sparse.linalg import spsolve

    _, h, w = image.shape
    ys, xs = np.nonzero(removed)
    index = -np.ones((h, w), dtype=np.int64)
    index[ys, xs] = np.arange(len(ys))
    matrix = lil_matrix((len(ys), len(ys)))
    rhs = np.zeros((len(ys), image.shape[0]))
    for row, (y, x) in enumerate(zip(ys, xs, strict=True)):
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                ny, nx = y + dy, x + dx
                if (dy, dx) == (0, 0) or not (0 <= ny < h and 0 <= nx < w):
                    continue
                weight = 1 / 12 if dy and dx else 1 / 6
                matrix[row, row] += weight
                if removed[ny, nx]:
                    matrix[row, index[ny, nx]] -= weight
                else:
                    rhs[row] += weight * image[:, ny, nx]
    out = image.astype(np.float64).copy()
    if len(ys):
        solution = spsolve(matrix.tocsc(), rhs).reshape(len(ys), -1)
        out[:, ys, xs] = solution.T
    return out


def _check(images: torch.Tensor, removed: torch.Tensor) -> float:
    ours = linear_imputation(images, removed)
    assert ours.dtype == images.dtype and ours.shape == images.shape
    worst = 0.0
    for i in range(len(images)):
        ref = spsolve_reference(images[i].double().numpy(), removed[i, 0].numpy())
        worst = max(worst, float(np.abs(ours[i].double().numpy() - ref).max()))
    assert worst <= ATOL[images.dtype], worst
    return worst


def _random_masks(n: int, h: int, w: int, fractions: list[float], seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    order = torch.argsort(torch.rand(n, h * w, generator=g), dim=1)
    rank = torch.argsort(order, dim=1)
    counts = torch.tensor([int(f * h * w) for f in fractions]).view(-1, 1)
    return (rank < counts).view(n, 1, h, w)


def _smooth_blob_masks(n: int, h: int, w: int, fractions: list[float]) -> torch.Tensor:
    """ROAD-like nested masks: the pixels nearest a centre are removed first (one big hole)."""
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    score = ((yy - h / 3) ** 2 + (xx - w / 2) ** 2).float().view(1, -1).expand(n, -1)
    rank = torch.argsort(torch.argsort(score, dim=1, stable=True), dim=1)
    counts = torch.tensor([int(f * h * w) for f in fractions]).view(-1, 1)
    return (rank < counts).view(n, 1, h, w)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_large_and_small_holes_in_one_chunk_match_spsolve(dtype: torch.dtype) -> None:
    fractions = [0.01, 0.3, 0.6, 0.9, 0.99, 0.99]
    images = torch.rand(6, 1, 40, 40, generator=torch.Generator().manual_seed(1), dtype=dtype)
    removed = _random_masks(6, 40, 40, fractions, seed=2)
    removed[-1] = _smooth_blob_masks(1, 40, 40, [0.99])[0]
    _check(images, removed)


def test_single_known_pixel_gives_a_constant_image() -> None:
    images = torch.rand(2, 3, 17, 23, dtype=torch.float64)
    removed = torch.ones(2, 1, 17, 23, dtype=torch.bool)
    removed[0, 0, 0, 0] = False  # a corner
    removed[1, 0, 9, 11] = False  # the middle
    out = linear_imputation(images, removed)
    expected = torch.stack([images[0, :, 0, 0], images[1, :, 9, 11]]).view(2, 3, 1, 1)
    torch.testing.assert_close(out, expected.expand_as(out), atol=1e-6, rtol=0)


def test_disconnected_holes_touching_borders_match_spsolve() -> None:
    h, w = 24, 31
    removed = torch.zeros(1, 1, h, w, dtype=torch.bool)
    removed[..., :, :6] = True  # a band along the left border, corners included
    removed[..., 10:14, 12:20] = True  # an interior block
    removed[..., h - 3 :, 25:] = True  # bottom-right corner
    removed[..., 5, 22] = True  # a single pixel
    removed[..., 0, 8:28:2] = True  # isolated pixels along the top border
    images = torch.rand(1, 1, h, w, generator=torch.Generator().manual_seed(3))
    _check(images.double(), removed)
    _check(images, removed)


@pytest.mark.parametrize(
    "shape", [(1, 300), (300, 1), (2, 70), (5, 3), (3, 3), (1, 2), (1, 12), (2, 6)]
)
def test_thin_and_tiny_images_match_spsolve(shape: tuple[int, int]) -> None:
    h, w = shape
    fractions = [0.5, 0.5 if h * w < 4 else 0.97]
    images = torch.rand(2, 1, h, w, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    removed = _random_masks(2, h, w, fractions, seed=5)
    _check(images, removed)


def test_channels_non_square_images_and_float64_match_spsolve() -> None:
    images = torch.rand(
        3, 3, 29, 45, generator=torch.Generator().manual_seed(6), dtype=torch.float64
    )
    removed = _random_masks(3, 29, 45, [0.95, 0.5, 0.05], seed=7)
    _check(images, removed)
    _check(images.float(), removed)


def test_result_of_an_image_does_not_depend_on_its_chunk_mates() -> None:
    """Each system stops on its own residual; batched reductions may round differently (1e-5)."""
    g = torch.Generator().manual_seed(8)
    images = torch.rand(8, 2, 32, 32, generator=g)
    removed = _random_masks(8, 32, 32, [0.01, 0.2, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99], seed=9)
    together = linear_imputation(images, removed)
    for i in (0, 4, 7):
        alone = linear_imputation(images[i : i + 1], removed[i : i + 1])
        torch.testing.assert_close(together[i : i + 1], alone, atol=1e-5, rtol=0)
    reordered = linear_imputation(images.flip(0), removed.flip(0)).flip(0)
    torch.testing.assert_close(reordered, together, atol=1e-5, rtol=0)


def test_nothing_removed_and_known_pixels_are_returned_unchanged() -> None:
    images = torch.rand(2, 1, 20, 20)
    removed = _random_masks(2, 20, 20, [0.0, 0.6], seed=10)
    out = linear_imputation(images, removed)
    assert torch.equal(out[~removed.expand_as(out)], images[~removed.expand_as(images)])
    assert torch.equal(out[0], images[0])
