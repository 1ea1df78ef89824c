"""The step schedules' perturbed images: any contiguous chunk equals the definition, pixel by pixel."""

from __future__ import annotations

import pytest
import torch

from harness.metrics.faithfulness._common import threshold_maker


def _definition(inside, outside, rank, thresholds, flat, steps, shape):  # type: ignore[no-untyped-def]
    """Row ``i // steps`` at step ``i % steps``: pixels ranked below the threshold from ``inside``."""
    n, c, h, w = shape
    out = []
    for i in flat.tolist():
        row, step = divmod(i, steps)
        chosen = (rank[row] < thresholds[step]).view(1, h, w)
        out.append(torch.where(chosen, inside[row].expand(c, h, w), outside[row].expand(c, h, w)))
    return torch.stack(out)


@pytest.mark.parametrize("chunk", [1, 3, 5, 7, 12, 35])  # inside one row, across rows, many rows
@pytest.mark.parametrize("constant_inside", [False, True])
def test_every_chunk_equals_the_definition(chunk: int, constant_inside: bool) -> None:
    g = torch.Generator().manual_seed(chunk)
    n, c, h, w, steps = 4, 3, 5, 6, 7
    images = torch.rand(n, c, h, w, generator=g)
    other = torch.rand(n, 1, 1, 1, generator=g) if constant_inside else torch.rand(n, c, h, w)
    rank = torch.stack([torch.randperm(h * w, generator=g) for _ in range(n)]).to(torch.int16)
    thresholds = torch.tensor([0, 1, 4, 9, 16, 29, 30])
    make = threshold_maker(images, other, images, rank, steps, thresholds)
    total = n * steps
    for start in range(0, total, chunk):
        flat = torch.arange(start, min(total, start + chunk))
        expected = _definition(other, images, rank, thresholds, flat, steps, images.shape)
        assert torch.equal(make(flat), expected)


def test_indices_that_are_no_range_are_refused() -> None:
    images = torch.rand(2, 1, 3, 3)
    rank = torch.stack([torch.randperm(9) for _ in range(2)])
    make = threshold_maker(images, images * 0, images, rank, 3, torch.tensor([0, 4, 9]))
    with pytest.raises(ValueError, match="expected a range"):
        make(torch.tensor([0, 2, 5]))
