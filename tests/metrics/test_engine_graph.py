"""The engine's inference: graph choice (adaptive pools MKL-DNN refuses, the fastest), chunks."""

from __future__ import annotations

import time
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from harness.arrays import ModuleModel
from harness.contracts import DatasetInfo, Modality, Task
from harness.metrics import _engine
from harness.metrics import _engine_graph as G


def vgg_like(pool: int) -> nn.Sequential:
    """Two stride-2 convolutions (16 px -> 4 x 4 cells), then an adaptive pool to ``pool``."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(4, 8, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(pool), nn.Flatten(), nn.Linear(8 * pool * pool, 3),
    ).eval()  # fmt: skip


def test_fixed_pool_equals_adaptive_average_pooling() -> None:
    x = torch.randn(2, 3, 12, 12, dtype=torch.float64)
    for h in range(1, 13):
        for w in (1, 5, 12):
            for oh in range(1, 10):
                for ow in (1, 4, 7):
                    inputs = x[..., :h, :w]
                    fixed = G.FixedAdaptivePool(h, w, oh, ow, inputs)(inputs)
                    expected = nn.functional.adaptive_avg_pool2d(inputs, (oh, ow))
                    torch.testing.assert_close(fixed, expected, rtol=1e-12, atol=1e-12)


def test_only_pools_that_do_not_divide_are_found() -> None:
    with torch.no_grad():
        assert G._uneven_pools(vgg_like(7), torch.rand(1, 1, 16, 16)) == {"4": (4, 4, 7, 7)}
        assert G._uneven_pools(vgg_like(2), torch.rand(1, 1, 16, 16)) == {}  # 4 x 4 -> 2 x 2


def test_an_uneven_pool_gets_an_optimised_graph_and_the_module_is_left_as_it_was() -> None:
    net = vgg_like(7)
    pool = net[4]
    sample = torch.rand(4, 1, 16, 16)
    with torch.no_grad():
        labels = [label for label, _ in G._candidates(net, sample)]
    # MKL-DNN refuses 4 x 4 -> 7 x 7; with the pool as matrices the optimised graph passes
    assert labels == ["inference-optimised, adaptive pools as matrices", "frozen"]
    assert net[4] is pool and isinstance(pool, nn.AdaptiveAvgPool2d)
    model = ModuleModel(net=net)
    model.build(DatasetInfo(Modality.IMAGE, Task.MULTICLASS, ("a", "b", "c"), image_size=(16, 16)))
    images = torch.rand(64, 1, 16, 16)
    graph = G.fast_forward(model, images)
    assert graph is not None
    with torch.inference_mode():
        torch.testing.assert_close(graph(images), net(images), rtol=1e-4, atol=1e-5)


def test_the_fastest_verified_graph_is_kept() -> None:
    def slow(x: Tensor) -> Tensor:
        time.sleep(0.01)
        return x

    def fast(x: Tensor) -> Tensor:
        return x

    example = torch.zeros(1)
    assert G._fastest([("slow", slow), ("fast", fast)], example) == ("fast", fast)
    assert G._fastest([("fast", fast), ("slow", slow)], example) == ("fast", fast)
    assert G._fastest([("only", slow)], example) == ("only", slow)  # nothing to time


def test_the_preferred_graph_stays_unless_another_is_clearly_faster() -> None:
    """Near-equal candidates must not be picked by timing noise (their logits differ in the last bits)."""

    def taking(seconds: float):  # type: ignore[no-untyped-def]
        def run(x: Tensor) -> Tensor:
            time.sleep(seconds)
            return x

        return run

    preferred, close, clear = taking(0.020), taking(0.018), taking(0.008)
    example = torch.zeros(1)
    assert G.CLEAR_MARGIN * 0.018 > 0.020 > G.CLEAR_MARGIN * 0.008
    for _ in range(3):
        assert G._fastest([("a", preferred), ("b", close)], example)[0] == "a"
    assert G._fastest([("a", preferred), ("b", clear)], example)[0] == "b"


@pytest.mark.parametrize("pool", [2, 7])
def test_graphs_of_both_pools_give_eager_logits(pool: int) -> None:
    net = vgg_like(pool)
    sample = torch.rand(8, 1, 16, 16)
    with torch.no_grad():
        candidates = G._candidates(net, sample)
    assert candidates
    with torch.inference_mode():
        for label, graph in candidates:
            torch.testing.assert_close(graph(sample), net(sample), rtol=1e-4, atol=1e-5, msg=label)


def test_chunks_count_pixels_not_channels() -> None:
    cpu = torch.device("cpu")
    assert _engine._default_chunk(cpu, (1, 64, 64)) == 64
    assert (
        _engine._default_chunk(cpu, (1, 128, 128))
        == _engine._default_chunk(cpu, (3, 128, 128))
        == 16
    )
    assert _engine._default_chunk(cpu, (3, 224, 224)) == 5  # one image when channels counted
    assert _engine._default_chunk(cpu, (512,)) == 512  # token ids: every value counts
    assert _engine._default_chunk(cpu, (1, 4, 4)) == 1024  # at most 1024 images


class ReluThenPool(nn.Module):
    """conv -> ReLU (in place or not) -> max pool, twice; optionally a ReLU output used again."""

    def __init__(self, inplace: bool, reuse: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1, self.conv2 = nn.Conv2d(1, 4, 3), nn.Conv2d(4, 4, 3)
        self.relu = nn.ReLU(inplace=inplace)
        self.head = nn.Linear(4 * 3 * 3, 2)
        self.reuse = reuse

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(x)
        r = self.relu(h)
        p = nn.functional.max_pool2d(r, 2)
        q = nn.functional.max_pool2d(torch.relu(self.conv2(p)), 2, padding=1)
        out = self.head(q.flatten(1))
        if self.reuse:  # the first ReLU's output used again (in place: through ``h``, its alias)
            out = out + (h if self.relu.inplace else r).mean(dim=(1, 2, 3)).unsqueeze(1)
        return out


def _order(graph: Any) -> list[str]:
    return [n.kind() for n in graph.nodes() if "pool" in n.kind() or "relu" in n.kind()]


def _rewritten(net: nn.Module, x: Tensor) -> Any:
    """The frozen trace of ``net`` on ``x`` after :func:`G.pool_before_relu`."""
    return G.pool_before_relu(torch.jit.freeze(G._trace(net, x)))


@pytest.mark.parametrize("inplace", [False, True])
def test_relus_move_after_their_max_pools_with_equal_logits(inplace: bool) -> None:
    net, x = ReluThenPool(inplace, reuse=False).eval(), torch.rand(8, 1, 16, 16)
    with torch.no_grad():
        frozen, expected = _rewritten(net, x), net(x)
        assert _order(frozen.graph) == ["aten::max_pool2d", "aten::relu"] * 2
        assert torch.equal(frozen(x), expected)  # max and ReLU commute exactly
        labels = []
        for label, graph in G._candidates(net, x):
            labels.append(label)
            assert _order(graph.graph)[0] == "aten::max_pool2d", label
            torch.testing.assert_close(graph(x), expected, rtol=1e-5, atol=1e-6, msg=label)
    assert labels == ["inference-optimised", "frozen"]


@pytest.mark.parametrize("inplace", [False, True])
def test_a_relu_whose_output_is_used_again_stays_before_its_pool(inplace: bool) -> None:
    net, x = ReluThenPool(inplace, reuse=True).eval(), torch.rand(8, 1, 16, 16)
    with torch.no_grad():
        frozen = _rewritten(net, x)
        order = _order(frozen.graph)
        assert order[0].startswith("aten::relu")  # the first pair is left as it was
        assert order[-2:] == ["aten::max_pool2d", "aten::relu"]  # the second still moves
        assert torch.equal(frozen(x), net(x))
