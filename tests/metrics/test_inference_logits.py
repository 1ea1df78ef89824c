"""``harness.inference``: explainers' no-gradient forwards through the engine's verified graph.

A graph runs no Python, so a module that counts its Python ``forward`` calls
shows which path ran: eager calls count, graph calls do not.
"""

from __future__ import annotations

import pytest
import torch
from harness_builtins.explainers.perturbation.lime import Lime
from harness_builtins.explainers.perturbation.occlusion import Occlusion
from torch import Tensor, nn

from harness.arrays import ModuleModel
from harness.chunking import explain_chunks
from harness.contracts import Batch, DatasetInfo, Modality, Task
from harness.draws import explainer_seed
from harness.inference import inference_logits
from harness.metrics import _engine, _engine_cache

MIN = _engine.CONFIG.freeze_min_images


class Counting(nn.Module):
    """A small CNN that counts its eager (Python) forward calls."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
            nn.Flatten(), nn.Linear(16, 3),
        )  # fmt: skip
        self.calls = 0

    def forward(self, x: Tensor) -> Tensor:
        self.calls += 1
        out: Tensor = self.net(x)
        return out


def counting_model() -> tuple[ModuleModel, Counting]:
    net = Counting().eval()
    model = ModuleModel(net=net)
    model.build(DatasetInfo(Modality.IMAGE, Task.MULTICLASS, ("a", "b", "c"), image_size=(8, 8)))
    return model, net


def batch_of(n: int, seed: int = 0, size: int = 8) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(
        ids=tuple(f"s{i}" for i in range(n)),
        labels=torch.zeros(n, dtype=torch.long),
        images=torch.rand(n, 1, size, size, generator=g),
    )


def eager(net: nn.Module, batch: Batch) -> Tensor:
    with torch.no_grad():
        out: Tensor = net.net(batch.images)
        return out


def test_the_graph_takes_over_once_requests_add_up_and_gives_eager_logits() -> None:
    model, net = counting_model()
    for seed in range(MIN // 64 - 1):
        batch = batch_of(64, seed)
        out = inference_logits(model, batch)
    assert net.calls == MIN // 64 - 1  # below freeze_min_images: eager every time
    torch.testing.assert_close(out, eager(net, batch))
    before = net.calls
    for seed in range(100, 103):
        other = batch_of(64, seed)
        out = inference_logits(model, other)  # the 512th image: a graph is built and used
        torch.testing.assert_close(out, eager(net, other), rtol=1e-5, atol=1e-6)
    built = net.calls - before  # tracing and verifying call the module a few times, once
    for seed in range(200, 205):
        inference_logits(model, batch_of(64, seed))
    assert net.calls - before == built
    assert not out.requires_grad


def test_hooks_train_mode_and_text_inputs_stay_eager() -> None:
    model, net = counting_model()
    batch = batch_of(MIN)
    inference_logits(model, batch)  # graph built
    calls = net.calls
    seen: list[int] = []
    handle = net.net[0].register_forward_hook(lambda m, i, o: seen.append(len(o)))
    try:
        inference_logits(model, batch)
    finally:
        handle.remove()
    assert (net.calls, seen) == (calls + 1, [MIN])  # a graph would skip the hook
    net.train()
    inference_logits(model, batch)
    net.eval()
    tokens = Batch(ids=batch.ids, labels=batch.labels, images=batch.images,
                   tokens=torch.zeros(MIN, 4, dtype=torch.long))  # fmt: skip
    inference_logits(model, tokens)
    assert net.calls == calls + 3
    inference_logits(model, batch)
    assert net.calls == calls + 3


@pytest.mark.parametrize("make", [
    lambda: Lime(n_samples=200, perturbations_per_eval=50, segmentation="grid", grid_size=4),
    lambda: Occlusion(window=1, stride=1, perturbations_per_eval=16),
])  # fmt: skip
def test_perturbation_explainers_use_the_graph_with_eager_values(make) -> None:
    model, net = counting_model()
    batch = batch_of(4, size=16)
    targets = torch.tensor([0, 1, 2, 0])
    with _engine.configure(freeze=False):
        torch.manual_seed(0)
        (expected,), _ = explain_chunks(model, make(), batch, targets, 4)
    eager_calls = net.calls
    _engine.cache_clear()  # else every forward would be remembered
    torch.manual_seed(0)
    (got,), _ = explain_chunks(model, make(), batch, targets, 4)
    assert net.calls - eager_calls < eager_calls // 2  # most perturbations ran in the graph
    torch.testing.assert_close(got.pixels, expected.pixels, rtol=1e-4, atol=1e-5)


def test_an_explanation_fingerprints_the_weights_once(monkeypatch: pytest.MonkeyPatch) -> None:
    model, _ = counting_model()
    inference_logits(model, batch_of(MIN))  # graph built
    sums: list[int] = []
    real = _engine_cache._checksums

    def counted(tensors: list[Tensor]) -> tuple[float, ...]:
        sums.append(len(tensors))
        return real(tensors)

    monkeypatch.setattr(_engine_cache, "_checksums", counted)
    explainer = Lime(n_samples=64, perturbations_per_eval=8, segmentation="grid", grid_size=4)
    explain_chunks(model, explainer, batch_of(2), torch.tensor([0, 1]), 2)
    assert len(sums) == 1  # not once per forward call (16 here)
    inference_logits(model, batch_of(2))
    inference_logits(model, batch_of(2))
    assert len(sums) == 3  # outside an explanation: every call


def test_identical_inputs_reuse_their_logits_until_inputs_weights_or_model_change() -> None:
    model, net = counting_model()
    batch = batch_of(8)
    first = inference_logits(model, batch)
    assert net.calls == 1
    again = inference_logits(model, batch)
    assert net.calls == 1  # remembered: no forward pass
    torch.testing.assert_close(again, first, rtol=0, atol=0)
    again.add_(1)  # a fresh copy: the caller may write into it
    torch.testing.assert_close(inference_logits(model, batch), first, rtol=0, atol=0)

    nudged = batch.images.clone()
    nudged[3, 0, 2, 2] += 1e-3  # one value of one row
    out = inference_logits(model, batch.with_images(nudged))
    assert net.calls == 2
    torch.testing.assert_close(out, eager(net, batch.with_images(nudged)))

    reshaped = batch.images.reshape(16, 1, 4, 8)  # the same bytes, another shape
    inference_logits(model, batch_of(16).with_images(reshaped))
    assert net.calls == 3

    with torch.no_grad():
        net.net[4].bias.add_(1.0)  # new weights: the remembered logits are stale
    out = inference_logits(model, batch)
    assert net.calls == 4
    torch.testing.assert_close(out, first + 1.0)

    twin, twin_net = counting_model()  # same weights, another model: its own entries
    inference_logits(twin, batch)
    assert twin_net.calls == 1

    _engine.cache_clear()
    inference_logits(model, batch)
    assert net.calls == 5
    with _engine.configure(cache=False):
        inference_logits(model, batch)
        inference_logits(model, batch)
    assert net.calls == 7


def test_dropout_in_train_mode_is_never_remembered() -> None:
    model, net = counting_model()
    net.net.insert(4, nn.Dropout(0.5))
    net.train()
    batch = batch_of(8)
    outs = [inference_logits(model, batch) for _ in range(2)]
    assert net.calls == 2
    assert not torch.equal(outs[0], outs[1])  # two draws of the dropout mask


def test_a_submodule_left_in_train_mode_is_never_remembered() -> None:
    model, net = counting_model()
    net.net.insert(4, nn.Dropout(0.5))
    net.eval()
    net.net[4].train()  # the model in eval mode, one dropout layer not
    batch = batch_of(8)
    inference_logits(model, batch)
    inference_logits(model, batch)
    assert net.calls == 2


def test_lime_explains_another_class_from_the_remembered_forwards() -> None:
    model, net = counting_model()
    batch = batch_of(3, size=16)
    lime = Lime(n_samples=64, perturbations_per_eval=16, segmentation="grid", grid_size=4)
    with _engine.configure(freeze=False), explainer_seed(5):
        explain_chunks(model, lime, batch, torch.tensor([0, 1, 2]), 3)
        forwards = net.calls
        assert forwards == 3 * 64 // 16
        parts, _ = explain_chunks(model, lime, batch, torch.tensor([2, 0, 1]), 1)  # row by row
        assert net.calls == forwards  # same images, same draws: every forward remembered
        _engine.cache_clear()
        (fresh,), _ = explain_chunks(model, lime, batch, torch.tensor([2, 0, 1]), 3)
    assert net.calls == 2 * forwards
    other = torch.cat([part.pixels for part in parts])
    torch.testing.assert_close(other, fresh.pixels, rtol=0, atol=0)


def test_entries_name_model_states_by_number_and_keep_only_recent_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_engine_cache, "MEMO_MODELS", 2)
    _engine.cache_clear()
    model, net = counting_model()
    batch = batch_of(4)
    expected = []
    for shift in range(4):  # four weight states, the memo keeps the last two keys
        with torch.no_grad():
            net.net[4].bias.fill_(float(shift))
        expected.append(inference_logits(model, batch))
    assert len(_engine_cache._MEMO_MODELS) == 2
    assert all(isinstance(key[0], int) for key in _engine_cache._MEMO)  # not the fingerprint
    calls = net.calls
    inference_logits(model, batch)  # state 3: remembered
    assert net.calls == calls
    with torch.no_grad():
        net.net[4].bias.fill_(0.0)  # state 0: its key was dropped, so it is computed again
    torch.testing.assert_close(inference_logits(model, batch), expected[0], rtol=0, atol=0)
    assert net.calls == calls + 1
