"""The packed-key argsort equals torch's stable argsort (the oracle) on every input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from harness.metrics._sorting import _packable, argsort_rows, sort_rows

FLOATS = st.floats(width=32, allow_nan=False, allow_infinity=True, allow_subnormal=True)
FEW = st.sampled_from([0.0, -0.0, 1.0, -1.0, 2.5, -np.inf, np.inf, 1e-45, -1e-45])


@settings(max_examples=200, deadline=None)
@given(
    rows=st.integers(1, 5),
    cols=st.integers(1, 40),
    data=st.data(),
    descending=st.booleans(),
    ties=st.booleans(),
)
def test_packed_argsort_equals_torch_stable_argsort(rows, cols, data, descending, ties) -> None:
    values = data.draw(arrays(np.float32, (rows, cols), elements=FEW if ties else FLOATS))
    a = torch.from_numpy(values)
    expected = torch.argsort(a, dim=1, descending=descending, stable=True)
    assert _packable(a) is not None  # the packed path is the one under test
    assert torch.equal(argsort_rows(a, descending=descending), expected)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_other_float_dtypes_match_torch(dtype) -> None:
    a = torch.randint(-4, 4, (6, 50)).to(dtype) / 3
    for descending in (False, True):
        expected = torch.argsort(a, dim=1, descending=descending, stable=True)
        assert torch.equal(argsort_rows(a, descending=descending), expected)


def test_float64_beyond_float32_and_nan_fall_back_to_torch() -> None:
    fine = torch.tensor([[1.0, 1.0 + 1e-12, 1.0 - 1e-12, 1.0]], dtype=torch.float64)
    assert _packable(fine) is None  # float32 would merge these values
    assert argsort_rows(fine).tolist() == [[2, 0, 3, 1]]
    with_nan = torch.tensor([[3.0, float("nan"), -1.0, 2.0]])
    assert _packable(with_nan) is None
    for descending in (False, True):
        expected = torch.argsort(with_nan, dim=1, descending=descending, stable=True)
        assert torch.equal(argsort_rows(with_nan, descending=descending), expected)


def test_large_rows_and_sort_rows() -> None:
    a = torch.randn(3, 20_000)
    a[:, ::7] = 0.5  # many ties
    assert torch.equal(argsort_rows(a), torch.argsort(a, dim=1, stable=True))
    assert torch.equal(sort_rows(a), torch.sort(a, dim=1).values)


def test_unstable_float64_path_sorts_and_is_used_for_average_ranks() -> None:
    a = torch.randn(4, 300, dtype=torch.float64) / 3  # values float32 cannot hold
    a[:, ::5] = 0.25
    assert _packable(a) is None
    for descending in (False, True):
        order = argsort_rows(a, descending=descending, stable=False)
        assert torch.equal(a.gather(1, order), a.sort(dim=1, descending=descending).values)
        assert torch.equal(order.sort(dim=1).values, torch.arange(300).expand(4, 300))


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_rows_sorted_in_blocks_on_torch_threads(threads: int) -> None:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a = torch.randn(7, 9_000)  # 63,000 values: sorted in row blocks when threads > 1
        a[:, ::3] = 0.0
        assert torch.equal(sort_rows(a), torch.sort(a, dim=1).values)
        assert torch.equal(argsort_rows(a), torch.argsort(a, dim=1, stable=True))
        expected = torch.argsort(a, dim=1, descending=True, stable=True)
        assert torch.equal(argsort_rows(a, descending=True), expected)
    finally:
        torch.set_num_threads(previous)


def test_float64_rows_sorted_as_float32_only_when_exact() -> None:
    exact = torch.randn(4, 10_000).double()  # float32 values held in float64
    out = sort_rows(exact)
    assert out.dtype == torch.float64 and torch.equal(out, torch.sort(exact, dim=1).values)
    fine = exact.clone()
    fine[:, :5] = torch.tensor([1.0, 1.0 + 1e-12, 1.0 - 1e-12, 1.0 + 2e-12, 1.0])
    out = sort_rows(fine)  # float32 would merge the near-equal values: sorted in float64
    assert torch.equal(out, torch.sort(fine, dim=1).values)
    fine[1, 7] = math.nan  # not narrowed either; NaN sorts last, as in torch
    expected = torch.sort(fine, dim=1).values
    torch.testing.assert_close(sort_rows(fine), expected, rtol=0, atol=0, equal_nan=True)


def _sort_in_child(queue) -> None:  # type: ignore[no-untyped-def]
    torch.set_num_threads(2)  # a forked child starts with 1: the blocks need 2
    a = np.random.default_rng(0).standard_normal((4, 20_000)).astype(np.float32)
    # compared with NumPy: torch's own OpenMP threads are not safe after a fork
    queue.put(bool(np.array_equal(sort_rows(torch.from_numpy(a)).numpy(), np.sort(a, axis=1))))


def test_sorting_threads_work_in_a_forked_child() -> None:
    import multiprocessing

    sort_rows(torch.randn(4, 20_000))  # the parent's pool exists before the fork
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_sort_in_child, args=(queue,))
    child.start()
    child.join(timeout=30)
    assert child.exitcode == 0, "the child hung or failed sorting with the parent's thread pool"
    assert queue.get(timeout=5) is True
