"""Maps near float32's maximum (finite) score as the same maps at unit scale.

Every metric here is invariant to a positive scale; before, patch sums, subset
sums and min-max spans of such maps overflowed to inf and changed the score.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import harness

CASES = {  # parameters; positive maps make subset sums overflow, signed ones min-max spans
    "localisation.iou": ({}, False),
    "faithfulness.region_perturbation": ({"regions": 10}, False),
    "faithfulness.correlation": ({"runs": 32, "subset_size": 100, "seed": 0}, True),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_map_near_float32_max_scores_as_at_unit_scale(name: str) -> None:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 24 * 40, 4)
    ).eval()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 24, 40, generator=g)
    a = torch.randn(2, 24, 40, generator=g)
    params, positive = CASES[name]
    a = a.abs() if positive else a
    a = a / a.abs().amax(dim=(1, 2), keepdim=True)  # each row reaches 1 (or -1)
    if not positive:
        a[:, 0, :2] = torch.tensor([1.0, -1.0])  # a span of 2: 2**128 after scaling, inf
    masks = torch.zeros(2, 24, 40)
    masks[:, 6:12, 10:20] = 1
    y = torch.tensor([0, 1])

    def score(maps: torch.Tensor) -> torch.Tensor:
        return harness.score(name, net, x, y, maps, s_batch=masks, device="cpu", **params).values

    huge = a * 2.0**127  # exact: a power of two; about 1.7e38, sums and spans overflow float32
    assert bool(torch.isfinite(huge).all())
    assert torch.equal(score(huge), score(a))
