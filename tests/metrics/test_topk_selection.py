"""Top-k hits: the selection path (one k, or rows padded to one k) equals the sort path, ties included."""

from __future__ import annotations

import pytest
import torch

from harness.metrics._sorting import sort_rows
from harness.metrics.localisation._common import expected_topk_hits


def _by_sorting(a: torch.Tensor, m: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """The definition, written out with a full sort: hits above the k-th value plus the ties' share."""
    kth = sort_rows(a).gather(1, (a.shape[1] - k).unsqueeze(1))
    above, tied = a > kth, a == kth
    share = (tied & m).sum(1).double() / tied.sum(1).double()
    return (above & m).sum(1).double() + (k.double() - above.sum(1).double()) * share


@pytest.mark.parametrize("k", [1, 7, 200, 1024])
@pytest.mark.parametrize("levels", [None, 5])  # continuous values, or 5 levels: many ties
def test_one_k_for_every_row_equals_the_sort_path(k: int, levels: int | None) -> None:
    g = torch.Generator().manual_seed(k)
    a = torch.rand(6, 1024, generator=g)
    if levels:
        a = (a * levels).floor()
    m = torch.rand(6, 1024, generator=g) > 0.7
    ks = torch.full((6,), k)
    got = expected_topk_hits(a, m, ks)
    assert torch.allclose(got, _by_sorting(a, m, ks), rtol=0, atol=1e-12)
    if levels is None:  # no ties: an exact count of mask pixels among the k largest
        top = a.topk(k, dim=1).indices
        assert torch.equal(got, m.gather(1, top).sum(1).double())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("levels", [None, 4])
def test_rows_with_different_k_equal_the_sort_path(dtype: torch.dtype, levels: int | None) -> None:
    g = torch.Generator().manual_seed(1)
    a = torch.randn(7, 300, generator=g, dtype=dtype)
    if levels:
        a = (a * levels).floor()
    m = torch.rand(7, 300, generator=g) > 0.5
    ks = torch.tensor([1, 30, 30, 299, 300, 2, 150])
    assert torch.allclose(expected_topk_hits(a, m, ks), _by_sorting(a, m, ks), atol=1e-12)


def test_integer_rows_with_different_k() -> None:
    a = torch.randint(-3, 3, (4, 50), generator=torch.Generator().manual_seed(3))
    m = torch.rand(4, 50, generator=torch.Generator().manual_seed(4)) > 0.5
    ks = torch.tensor([5, 1, 50, 20])
    assert torch.allclose(expected_topk_hits(a, m, ks), _by_sorting(a, m, ks), atol=1e-12)
