"""The shared perturbation engine: OOM halving, frozen graphs, cache invalidation, counting."""

from __future__ import annotations

import copy
import dataclasses
from typing import ClassVar

import pytest
import torch
from torch import Tensor, nn

import harness
from harness.contracts import Batch, DatasetInfo, Modality, Task, TorchModel
from harness.errors import ContractViolation, PluginError
from harness.metrics import _engine, _engine_cache
from harness.metrics._engine_graph import fast_forward, plain_module

INFO = DatasetInfo(Modality.IMAGE, Task.MULTICLASS, ("a", "b", "c"))


class FlakyMemoryModel(TorchModel):
    """Runs out of memory for batches above ``limit``: a CUDA error, or a real CPU allocation."""

    name: ClassVar[str] = "test.flaky_memory"

    def __init__(
        self, *, net: nn.Module | None = None, limit: int = 5, cuda_error: bool = True
    ) -> None:
        self.net = net
        self.limit = limit
        self.cuda_error = cuda_error

    def _forward(self, batch: Batch) -> Tensor:
        assert batch.images is not None
        if len(batch.images) > self.limit:
            if self.cuda_error:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
            torch.empty(1 << 62, dtype=torch.uint8)  # the CPU allocator's own error
        return self.module(batch.images)

    def _build_module(self, info: DatasetInfo) -> nn.Module:
        assert self.net is not None
        return self.net


def _flaky(toy, **params: object) -> FlakyMemoryModel:
    model = FlakyMemoryModel(net=toy.module, **params)
    model.build(INFO)
    return model


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    _engine.cache_clear()


@pytest.mark.parametrize("cuda_error", [True, False])
def test_out_of_memory_halves_the_chunk_and_gives_the_same_values(toy, cuda_error: bool) -> None:
    metric = harness.get_metric("faithfulness.pixel_flipping", pixels_per_step=64)
    reference = metric.evaluate(toy.model, toy.batch, toy.targets, toy.attribution)
    flaky = _flaky(toy, limit=5, cuda_error=cuda_error)
    with _engine.configure(max_batch=16, cache=False), _engine.count_forwards() as stats:
        values = metric.evaluate(flaky, toy.batch, toy.targets, toy.attribution)
    torch.testing.assert_close(values.values, reference.values, atol=1e-6, rtol=0)
    assert stats.retries == 2 and max(stats.chunk_sizes) <= 4  # 16 -> 8 -> 4, then remembered


def test_other_runtime_errors_propagate(toy) -> None:
    class Broken(FlakyMemoryModel):
        name: ClassVar[str] = "test.broken"

        def _forward(self, batch: Batch) -> Tensor:
            raise RuntimeError("shape mismatch in layer 3")

    model = Broken(net=toy.module)
    model.build(INFO)
    metric = harness.get_metric("faithfulness.pixel_flipping", pixels_per_step=64)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        metric.evaluate(model, toy.batch, toy.targets, toy.attribution)


def test_frozen_graph_is_used_and_equals_eager(toy) -> None:
    assert fast_forward(toy.model, toy.batch.images) is not None
    metric = harness.get_metric("faithfulness.deletion_auc", pixels_per_step=8)
    frozen = metric.evaluate(toy.model, toy.batch, toy.targets, toy.attribution)
    with _engine.configure(freeze=False, cache=False):
        eager = metric.evaluate(toy.model, toy.batch, toy.targets, toy.attribution)
    torch.testing.assert_close(
        frozen.curves["probability"], eager.curves["probability"], atol=1e-6, rtol=0
    )


class ViaLogits(FlakyMemoryModel):
    """The same module behind an overridden ``_forward``: the engine must use ``model.logits``."""

    name: ClassVar[str] = "test.via_logits"

    def _forward(self, batch: Batch) -> Tensor:
        assert batch.images is not None
        return self.module(batch.images)


def test_eager_module_path_equals_the_logits_path(toy) -> None:
    """Without a graph, a plain TorchModel's module runs on each chunk's images directly."""
    assert plain_module(toy.model) is toy.model.module
    twin = ViaLogits(net=toy.module)
    twin.build(INFO)
    assert plain_module(twin) is None
    metric = harness.get_metric("faithfulness.pixel_flipping", pixels_per_step=32)
    with _engine.configure(freeze=False, cache=False, max_batch=5):
        direct = metric.evaluate(toy.model, toy.batch, toy.targets, toy.attribution)
        via = metric.evaluate(twin, toy.batch, toy.targets, toy.attribution)
    assert torch.equal(direct.curves["probability"], via.curves["probability"])


def test_eager_module_path_still_checks_logits(toy, wrap) -> None:
    class Poisoned(nn.Module):
        def forward(self, x: Tensor) -> Tensor:
            out = toy.module(x)
            return out.masked_fill(x.flatten(1).amax(1, keepdim=True) < 0.5, float("nan"))

    model = wrap(Poisoned().eval(), classes=3)
    metric = harness.get_metric("faithfulness.pixel_flipping", pixels_per_step=32)
    with _engine.configure(freeze=False), pytest.raises(ContractViolation, match="logits"):
        metric.evaluate(model, toy.batch, toy.targets, toy.attribution)


class BatchDependent(nn.Module):
    """Traces to a graph with the batch size baked in, so verification must reject it."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x) + float(x.shape[0])


def test_untrustworthy_graph_falls_back_to_eager(toy, wrap) -> None:
    module = BatchDependent(toy.module).eval()
    model = wrap(module, classes=3)
    assert fast_forward(model, toy.batch.images) is None
    metric = harness.get_metric("faithfulness.pixel_flipping", pixels_per_step=64, output="logit")
    with _engine.configure(max_batch=8):
        scores = metric.evaluate(model, toy.batch, toy.targets, toy.attribution)
    assert scores.curves["logit"].min() > 7.0  # eager: + 8 per 8-image chunk, not a baked + 4


class _Shim:
    """Something with a ``batch`` attribute, like a toy setup."""

    def __init__(self, batch: Batch) -> None:
        self.batch = batch


def _clean(model, toy) -> Tensor:
    return _engine.clean_logits(model, toy.batch)


def test_cache_serves_repeats_and_never_stale_weights(toy_factory) -> None:
    toy = toy_factory(seed=5)
    first = _clean(toy.model, toy)
    with _engine.count_forwards() as stats:
        again = _clean(toy.model, toy)
    assert stats.images == 0 and torch.equal(first, again)
    layer = toy.module[0]
    with torch.no_grad():
        layer.weight.add_(0.5)  # in place: bumps the version counter
    changed = _clean(toy.model, toy)
    with torch.no_grad():
        expected = toy.module(toy.batch.images)
    torch.testing.assert_close(changed, expected, atol=1e-6, rtol=0)
    assert not torch.allclose(changed, first)
    layer.weight.data.mul_(-1)  # through .data: no version bump, caught by the weight sums
    flipped = _clean(toy.model, toy)
    with torch.no_grad():
        torch.testing.assert_close(flipped, toy.module(toy.batch.images), atol=1e-6, rtol=0)


def test_pinned_weights_are_summed_once_but_in_place_updates_still_count(
    toy_factory, monkeypatch
) -> None:
    toy = toy_factory(seed=7)
    summed: list[int] = []
    real_checksums = _engine_cache._checksums

    def counting_checksums(tensors: list[Tensor]) -> tuple[float, ...]:
        summed.append(1)  # one pass over every weight
        return real_checksums(tensors)

    monkeypatch.setattr(_engine_cache, "_checksums", counting_checksums)
    fingerprint = _engine_cache.weights_fingerprint
    outside = [fingerprint(toy.module), fingerprint(toy.module)]
    per_call = len(summed) // 2
    with _engine.weights_pinned():
        first = fingerprint(toy.module)
        with _engine.weights_pinned():  # nested: the same pin
            assert fingerprint(toy.module) == first
        assert len(summed) == 3 * per_call  # summed once inside the pin
        with torch.no_grad():
            toy.module[0].weight.add_(0.5)  # bumps the version counter: summed again
        bumped = fingerprint(toy.module)
    assert outside[0] == outside[1] == first and bumped != first
    assert len(summed) == 4 * per_call
    assert fingerprint(toy.module) == bumped and len(summed) == 5 * per_call  # pin released
    summed.clear()
    metric = harness.get_metric("faithfulness.pixel_flipping", pixels_per_step=64)
    metric.evaluate(toy.model, toy.batch, toy.targets, toy.attribution)  # three lookups
    assert len(summed) == per_call


def test_cache_follows_deep_copies_and_pixels(toy_factory) -> None:
    toy = toy_factory(seed=6)
    original = _clean(toy.model, toy)
    clone = copy.deepcopy(toy.model)
    for module in clone.module.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    randomised = _clean(clone, toy)
    with torch.no_grad():
        torch.testing.assert_close(randomised, clone.module(toy.batch.images), atol=1e-6, rtol=0)
    assert not torch.allclose(randomised, original)
    brighter = toy.batch.with_images(toy.batch.images + 0.25)  # same ids, other pixels
    with torch.no_grad():
        expected = toy.module(brighter.images)
    torch.testing.assert_close(_clean(toy.model, _Shim(brighter)), expected, atol=1e-6, rtol=0)


def test_swapped_submodules_and_forward_hooks_change_the_fingerprint(toy_factory, wrap) -> None:
    toy = toy_factory(seed=8)

    class Head(nn.Module):
        def __init__(self, net: nn.Module) -> None:
            super().__init__()
            self.net = net
            self.act: nn.Module = nn.Identity()
            self.temperature = 1.0

        def forward(self, x: Tensor) -> Tensor:
            return self.act(self.net(x)) / self.temperature

    net = Head(toy.module).eval()
    model = wrap(net, classes=3)

    def fresh() -> Tensor:
        with torch.no_grad():
            return net(toy.batch.images)

    first = _clean(model, toy)
    torch.testing.assert_close(first, fresh(), atol=1e-6, rtol=0)
    net.act = nn.Tanh().eval()  # a submodule without weights, swapped on the same wrapper
    torch.testing.assert_close(_clean(model, toy), fresh(), atol=1e-6, rtol=0)
    handle = net.net.register_forward_hook(lambda m, i, out: out * 3)
    torch.testing.assert_close(_clean(model, toy), fresh(), atol=1e-6, rtol=0)
    handle.remove()
    torch.testing.assert_close(_clean(model, toy), fresh(), atol=1e-6, rtol=0)
    net.temperature = 0.25  # a plain attribute: the documented case for clear_metric_cache
    harness.clear_metric_cache()
    torch.testing.assert_close(_clean(model, toy), fresh(), atol=1e-6, rtol=0)


def test_forward_count_is_steps_times_rows_plus_clean(toy) -> None:
    metric = harness.get_metric("faithfulness.region_perturbation", patch_size=4, regions=5)
    with _engine.count_forwards() as stats:
        metric.evaluate(toy.model, toy.batch, toy.targets, toy.attribution)
    assert stats.images == 8 * 5 + 8
    assert all(size <= 64 for size in stats.chunk_sizes)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("faithfulness.pixel_flipping", {"pixels_per_step": 64}),
        ("faithfulness.deletion_auc", {"pixels_per_step": 64}),
        ("faithfulness.region_perturbation", {"patch_size": 4, "regions": 5}),
    ],
)
def test_unperturbed_image_rides_in_the_schedule_chunk(toy, name: str, params: dict) -> None:
    """The clean score is step 0 of the schedule: one forward call, no separate clean batch."""
    metric = harness.get_metric(name, **params)
    with _engine.count_forwards() as stats:
        metric.evaluate(toy.model, toy.batch, toy.targets, toy.attribution)
    assert stats.calls == 1 and stats.chunk_sizes == [stats.images]


def test_small_requests_do_not_build_a_graph(toy_factory) -> None:
    toy = toy_factory(seed=9)
    _engine.clean_logits(toy.model, toy.batch)  # 8 images: below freeze_min_images
    assert fast_forward(toy.model, toy.batch.images, build=False) is None
    with _engine.configure(freeze_min_images=8):
        _engine.cache_clear()
        _engine.clean_logits(toy.model, toy.batch)
    assert fast_forward(toy.model, toy.batch.images, build=False) is not None


def test_small_requests_that_add_up_build_a_graph(toy_factory) -> None:
    toy = toy_factory(seed=10)
    with _engine.configure(freeze_min_images=20):
        _engine.clean_logits(toy.model, toy.batch)  # 8 images requested so far
        _engine.cache_clear()
        _engine.clean_logits(toy.model, toy.batch)  # 16
        assert fast_forward(toy.model, toy.batch.images, build=False) is None
        _engine.cache_clear()
        _engine.clean_logits(toy.model, toy.batch)  # 24: this request builds
    assert fast_forward(toy.model, toy.batch.images, build=False) is not None


@pytest.mark.parametrize(("h", "w", "patch"), [(8, 8, 4), (7, 9, 4), (5, 5, 3), (6, 4, 8)])
def test_patch_sums_add_each_patch_of_the_padded_grid(h: int, w: int, patch: int) -> None:
    """Padded-view patch sums equal a scatter of every pixel into its patch id."""
    from harness.metrics.faithfulness.region_perturbation import patch_ids, patch_sums

    pixels = torch.randn(
        3, h, w, generator=torch.Generator().manual_seed(h * w), dtype=torch.float64
    )
    ids, n_patches = patch_ids(h, w, patch, pixels.device)
    expected = torch.zeros(3, n_patches, dtype=torch.float64).index_add_(1, ids, pixels.flatten(1))
    torch.testing.assert_close(patch_sums(pixels, patch), expected)
    assert float(patch_sums(torch.ones(1, h, w), patch).sum()) == h * w


@pytest.mark.parametrize(
    ("error", "oom"),
    [
        (torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"), True),
        (RuntimeError("MPS backend out of memory"), True),
        (RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate`"), True),
        (RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"), True),
        (RuntimeError("[enforce fail at alloc_cpu.cpp:121] can't allocate memory"), True),
        (RuntimeError("shape mismatch in layer 3"), False),
        (ValueError("out of memory"), False),
    ],
)
def test_is_oom_recognises_every_backend_s_allocation_failure(error: Exception, oom: bool) -> None:
    assert _engine.is_oom(error) is oom


def test_results_of_freed_models_leave_the_cache_at_the_next_store(toy_factory) -> None:
    import gc

    toy = toy_factory(seed=6)
    clone = copy.deepcopy(toy.model)
    _clean(clone, toy)
    assert len(_engine_cache._CACHE) == 1
    del clone
    gc.collect()
    _clean(toy.model, toy)
    entries = list(_engine_cache._CACHE.values())
    assert len(entries) == 1 and entries[0].model() is toy.model
    assert _engine_cache._BYTES[0] == entries[0].nbytes


def test_schedule_results_are_not_reused_for_other_tokens() -> None:
    """An image+text model reads the tokens: the same ids, images and maps with new tokens recompute."""
    from harness.contracts import Attribution, Modality, Task
    from harness.testing._select import fixture_batch, fixture_dataset, fixture_model

    model = fixture_model(Modality.IMAGE_TEXT, Task.MULTILABEL)
    batch = fixture_batch(fixture_dataset(Modality.IMAGE_TEXT, Task.MULTILABEL), rows=4)
    targets = torch.zeros(len(batch), dtype=torch.long)
    pixels = torch.rand(
        len(batch), *batch.images.shape[2:], generator=torch.Generator().manual_seed(0)
    )
    metric = harness.get_metric("faithfulness.deletion_auc", steps=8)
    first = metric.score(model, batch, targets, Attribution(pixels=pixels))
    other = dataclasses.replace(batch, tokens=torch.zeros_like(batch.tokens))
    cached = metric.score(model, other, targets, Attribution(pixels=pixels))
    with _engine.configure(cache=False):
        fresh = metric.score(model, other, targets, Attribution(pixels=pixels))
    torch.testing.assert_close(cached, fresh)
    assert not torch.equal(first, fresh)  # the tokens matter to this model


class BrightnessBranch(nn.Module):
    """Python control flow on pixel values: a trace would keep the sample's branch only."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        if float(x.amax()) > 1.5:
            x = x / 4
        return self.net(x)


def test_a_module_branching_on_values_runs_eager(toy, wrap) -> None:
    module = BrightnessBranch(toy.module).eval()
    model = wrap(module, classes=3)
    dim = toy.batch.images.clamp(-1.0, 1.0)
    assert fast_forward(model, dim[:2]) is None  # the tracer's warning means "do not freeze"
    bright = dim.clone()
    bright[4:] += 3.0  # half the rows take the other branch
    batch = toy.batch.with_images(bright)
    metric = harness.get_metric("faithfulness.pixel_flipping", pixels_per_step=64, output="logit")
    with _engine.configure(freeze_min_images=1):
        frozen = metric.evaluate(model, batch, toy.targets, toy.attribution)
    with _engine.configure(freeze=False):
        eager = metric.evaluate(model, batch, toy.targets, toy.attribution)
    torch.testing.assert_close(frozen.curves["logit"], eager.curves["logit"], atol=1e-6, rtol=0)


def test_a_module_in_training_mode_is_refused_by_name(toy_factory, wrap) -> None:
    toy = toy_factory(seed=8)
    net = nn.Sequential(toy.module[0], nn.BatchNorm2d(6), *list(toy.module)[1:]).eval()
    model = wrap(net, classes=3)
    _clean(model, toy)
    net[1].train()  # one submodule only: the root is still in eval mode
    with pytest.raises(ContractViolation, match="module\\(s\\) '1' in training mode"):
        _clean(model, toy)
    metric = harness.get_metric("faithfulness.pixel_flipping", pixels_per_step=64)
    with pytest.raises(ContractViolation, match="call .eval\\(\\)"):
        metric.evaluate(model, toy.batch, toy.targets, toy.attribution)
    net.eval()
    with torch.no_grad():
        torch.testing.assert_close(_clean(model, toy), net(toy.batch.images), atol=1e-6, rtol=0)


def test_permuted_weights_and_non_persistent_buffers_change_the_fingerprint(
    toy_factory, wrap
) -> None:
    toy = toy_factory(seed=9)

    class Normalised(nn.Module):
        def __init__(self, net: nn.Module) -> None:
            super().__init__()
            self.net = net
            self.register_buffer("shift", torch.zeros(1), persistent=False)

        def forward(self, x: Tensor) -> Tensor:
            return self.net(x - self.shift)

    net = Normalised(toy.module).eval()
    model = wrap(net, classes=3)
    before = _clean(model, toy)
    head = toy.module[-1]
    head.weight.data.copy_(head.weight.data[[1, 0, 2]])  # class rows swapped: same sums
    head.bias.data.copy_(head.bias.data[[1, 0, 2]])
    swapped = _clean(model, toy)
    torch.testing.assert_close(swapped, before[:, [1, 0, 2]], atol=1e-6, rtol=0)
    net.shift.fill_(0.75)
    with torch.no_grad():
        torch.testing.assert_close(_clean(model, toy), net(toy.batch.images), atol=1e-6, rtol=0)


def test_cpu_weights_are_fingerprinted_by_their_bytes() -> None:
    """Every dtype counts (an integer buffer written through ``.data``), and a NaN weight keeps one key.

    Float sums saw neither: integer buffers were not summed, and NaN sums never equal themselves
    (every metric call would then miss the cache and rebuild the model's graph).
    """
    torch.manual_seed(0)
    net = nn.Linear(3, 2)
    net.register_buffer("steps", torch.zeros(2, dtype=torch.long))
    fingerprint = _engine_cache.weights_fingerprint
    before = fingerprint(net)
    net.steps.data[0] = 5  # bypasses the version counter
    after = fingerprint(net)
    assert after[:2] == before[:2]  # same layout: only the checksums can tell
    assert after != before
    net.weight.data[0, 0] = float("nan")
    assert fingerprint(net) == fingerprint(net)


def test_float_sums_off_the_cpu_see_permuted_rows() -> None:
    w = torch.randn(3, 4, dtype=torch.float64)
    assert _engine_cache._float_sums([w]) != _engine_cache._float_sums([w[[1, 0, 2]]])
    assert _engine_cache._float_sums([w]) == _engine_cache._float_sums([w.clone()])


def test_weights_made_in_inference_mode_are_scored_uncached(toy_factory, wrap) -> None:
    toy = toy_factory(seed=10)
    with torch.inference_mode():
        net = copy.deepcopy(toy.module).eval()
        for p in net.parameters():
            p.copy_(p)
        net = nn.Sequential(*[copy.deepcopy(m) for m in net])  # tensors are inference tensors
    model = wrap(net, classes=3)
    with torch.no_grad():
        expected = net(toy.batch.images)
    torch.testing.assert_close(_clean(model, toy), expected, atol=1e-6, rtol=0)


def test_long_tensors_are_weighted_by_blocks_without_a_long_ramp(monkeypatch) -> None:
    monkeypatch.setattr(_engine_cache, "_RAMP_MAX", 8)
    monkeypatch.setattr(_engine_cache, "_RAMPS", {})
    t = torch.arange(30, dtype=torch.float64).sin()
    i = torch.arange(30)
    weights = (i // 8 + 1) * (i % 8 + 1)  # value j of block b weighs (b + 1)(j + 1); tail too
    expected = float((t * weights).sum())
    assert float(_engine_cache._position_weighted_sum(t)) == pytest.approx(expected, rel=1e-12)
    assert max(len(r) for r in _engine_cache._RAMPS.values()) == 8
    short = t[:6]
    assert float(_engine_cache._position_weighted_sum(short)) == pytest.approx(
        float((short * torch.arange(1, 7)).sum()), rel=1e-12
    )
    swapped = t.clone()
    swapped[[3, 27]] = swapped[[27, 3]]  # same sum, other positions
    assert float(_engine_cache._position_weighted_sum(swapped)) != pytest.approx(expected)


def test_a_region_larger_than_the_image_is_refused(toy) -> None:
    metric = harness.get_metric("faithfulness.region_perturbation", patch_size=17)
    with pytest.raises(PluginError, match="patch_size=17 - expected at most the image's side"):
        metric.evaluate(toy.model, toy.batch, toy.targets, toy.attribution)
    whole = harness.get_metric("faithfulness.region_perturbation", patch_size=16, regions=1)
    assert whole.evaluate(toy.model, toy.batch, toy.targets, toy.attribution).values.shape == (8,)
