"""Max- / avg-sensitivity vs Quantus 0.6 (same draws: exact; fresh draws: distribution)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from _toys_a import InputXGradient, ModuleModel, blob_batch, explained_case, single_thread

import harness
from harness.chunking import explain_chunk
from harness.metrics.robustness.sensitivity import drawn_relative_changes, relative_changes

quantus = pytest.importorskip("quantus")


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    yield from single_thread()


EXPLAINER = InputXGradient()


def quantus_explain(
    model: torch.nn.Module, inputs: np.ndarray, targets: np.ndarray, **_: object
) -> np.ndarray:
    batch, _ = blob_batch(n=len(inputs), size=inputs.shape[-1])
    batch = batch.with_images(torch.as_tensor(inputs, dtype=torch.float32))
    out = EXPLAINER.explain(
        ModuleModel(module=model), batch, torch.as_tensor(np.asarray(targets)).long()
    )
    return out.pixels.unsqueeze(1).numpy()


@pytest.fixture(scope="module")
def case():
    return explained_case(EXPLAINER)


def _quantus(cls: str, case, n_samples: int, seed: int) -> np.ndarray:
    model, batch, targets, attribution = case
    metric = getattr(quantus, cls)(
        nr_samples=n_samples, lower_bound=0.2, abs=False, normalise=False, disable_warnings=True
    )
    np.random.seed(seed)
    out = metric(
        model=model.module,
        x_batch=batch.images.numpy(),
        y_batch=targets.numpy(),
        a_batch=attribution.pixels.unsqueeze(1).numpy().copy(),
        explain_func=quantus_explain,
        channel_first=True,
    )
    return np.asarray(out, dtype=float)


def test_same_draws_match_quantus_exactly(case) -> None:
    model, batch, targets, attribution = case
    n, s = len(batch), 6
    # Quantus draws one U(-0.2, 0.2) array of shape (N, C*H*W) per step from the global stream.
    np.random.seed(11)
    steps = [np.random.uniform(-0.2, 0.2, size=(n, 16 * 16)) for _ in range(s)]
    noise = torch.as_tensor(np.stack(steps, axis=1).reshape(n, s, 1, 16, 16), dtype=torch.float32)
    changes = relative_changes(
        model, EXPLAINER, batch, targets, attribution.pixels, noise, chunk=5
    ).numpy()
    # Quantus adds float64 noise to float32 inputs; we add float32 noise: rounding only.
    np.testing.assert_allclose(
        changes.max(1), _quantus("MaxSensitivity", case, s, seed=11), rtol=1e-4
    )
    np.testing.assert_allclose(
        changes.mean(1), _quantus("AvgSensitivity", case, s, seed=11), rtol=1e-4
    )


@pytest.mark.parametrize(("name", "cls"), [("max", "MaxSensitivity"), ("avg", "AvgSensitivity")])
def test_registered_metric_matches_quantus_fed_its_noise(case, monkeypatch, name, cls) -> None:
    """The metric itself (noise keyed by sample id) against Quantus given that noise."""
    from harness.draws import base_seed, row_seeds, uniform_rows

    model, batch, targets, attribution = case
    n, s = len(batch), 5
    torch.manual_seed(21)  # the metric draws its seed from torch's global generator
    ours = harness.get_metric(f"robustness.{name}_sensitivity", n_samples=s).evaluate(
        model, batch, targets, attribution, explainer=EXPLAINER
    )
    torch.manual_seed(21)
    seeds = row_seeds("robustness.sensitivity", base_seed(None), batch.ids)
    noise = uniform_rows(seeds, (s, 1, 16, 16)).mul_(2).sub_(1).mul_(0.2)
    steps = iter(noise[:, k].reshape(n, -1).double().numpy() for k in range(s))
    monkeypatch.setattr(np.random, "uniform", lambda *a, **k: next(steps))  # one draw per step
    q = getattr(quantus, cls)(
        nr_samples=s, lower_bound=0.2, abs=False, normalise=False, disable_warnings=True
    )
    theirs = q(
        model=model.module, x_batch=batch.images.numpy(), y_batch=targets.numpy(),
        a_batch=attribution.pixels.unsqueeze(1).numpy().copy(), explain_func=quantus_explain,
        channel_first=True,
    )  # fmt: skip
    np.testing.assert_allclose(ours.values.numpy(), np.asarray(theirs, float), rtol=1e-4)


def test_chunking_does_not_change_values(case) -> None:
    model, batch, targets, attribution = case
    noise = (
        torch.rand(len(batch), 5, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    ) * 0.2
    one = relative_changes(model, EXPLAINER, batch, targets, attribution.pixels, noise, chunk=1)
    many = relative_changes(model, EXPLAINER, batch, targets, attribution.pixels, noise, chunk=1000)
    auto = relative_changes(model, EXPLAINER, batch, targets, attribution.pixels, noise)
    uneven = relative_changes(model, EXPLAINER, batch, targets, attribution.pixels, noise, chunk=7)
    for other in (many, auto, uneven):
        np.testing.assert_allclose(one.numpy(), other.numpy(), rtol=1e-5)


class _Recording(InputXGradient):
    """The real input x gradient explainer, noting how many rows each call explains."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def explain(self, model, batch, targets):  # type: ignore[no-untyped-def]
        self.calls.append(len(batch))
        return super().explain(model, batch, targets)


@pytest.mark.parametrize(("chunk", "groups", "calls"), [(12, 2, 4 * [10]), (3, 1, 8 * [3, 2])])
def test_copies_are_made_a_group_of_rows_at_a_time(case, chunk, groups, calls) -> None:
    """Memory holds one group's copies (chunk // S rows, at least one), never all N x S."""
    model, batch, targets, attribution = case
    s = 5
    noise = (
        torch.rand(len(batch), s, 1, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    ) * 0.2
    drawn: list[tuple[int, int]] = []

    def draw(lo: int, hi: int) -> torch.Tensor:
        drawn.append((lo, hi))
        return noise[lo:hi]

    explainer = _Recording()
    changes = drawn_relative_changes(
        model, explainer, batch, targets, attribution.pixels, s, draw, chunk=chunk
    )
    assert len(batch) == 8
    assert all(hi - lo == groups for lo, hi in drawn) and drawn[-1][1] == len(batch)
    assert explainer.calls == calls
    whole = relative_changes(model, EXPLAINER, batch, targets, attribution.pixels, noise)
    np.testing.assert_allclose(changes.numpy(), whole.numpy(), rtol=1e-5)


def test_explain_chunk_splits_evenly_within_the_budget() -> None:
    cpu = torch.device("cpu")
    assert explain_chunk(cpu, (1, 32, 32), 256) == 128  # 2**17 values: two calls of 128
    assert explain_chunk(cpu, (1, 28, 28), 256) == 128  # at most 167: two even calls
    assert explain_chunk(cpu, (1, 28, 28), 100) == 100  # one call
    assert explain_chunk(cpu, (3, 224, 224), 10) == 2  # pixels count, not channels
    assert explain_chunk(cpu, (1, 224, 224), 10) == 2
    assert explain_chunk(cpu, (1, 512, 512), 10) == 1  # larger than the budget: one row
    assert explain_chunk(cpu, (300,), 10) == 10  # token ids: every value counts
    assert explain_chunk(cpu, (1, 16, 16), 5000) == 500  # at most 512 rows: 10 even calls


@pytest.mark.parametrize(
    ("name", "cls", "row_tol"),
    [
        ("robustness.max_sensitivity", "MaxSensitivity", 0.35),
        ("robustness.avg_sensitivity", "AvgSensitivity", 0.1),
    ],
)
def test_fresh_draws_agree_with_quantus_in_distribution(
    case, name: str, cls: str, row_tol: float
) -> None:
    """Independent draws (torch vs NumPy streams), 64 per row.

    The mean is stable: per-row values within 10 %. The maximum of 64 draws is a tail
    statistic: per-row within 35 %, the batch mean within 10 %.
    """
    model, batch, targets, attribution = case
    torch.manual_seed(0)
    scores = harness.get_metric(name, n_samples=64).evaluate(
        model, batch, targets, attribution, explainer=EXPLAINER
    )
    theirs = _quantus(cls, case, 64, seed=0)
    np.testing.assert_allclose(scores.values.numpy(), theirs, rtol=row_tol)
    assert abs(float(scores.values.mean()) / theirs.mean() - 1) < 0.1
    assert scores.curves["changes"].shape == (8, 64)
    assert scores.notes["run_agreement"] > 0.5


def test_seeded_runs_repeat_and_larger_radius_is_worse(case) -> None:
    model, batch, targets, attribution = case
    metric = harness.get_metric("robustness.avg_sensitivity", n_samples=8)
    torch.manual_seed(3)
    first = metric.score(model, batch, targets, attribution, explainer=EXPLAINER)
    torch.manual_seed(3)
    again = metric.score(model, batch, targets, attribution, explainer=EXPLAINER)
    torch.manual_seed(3)
    wide = harness.get_metric("robustness.avg_sensitivity", n_samples=8, radius=0.6).score(
        model, batch, targets, attribution, explainer=EXPLAINER
    )
    assert torch.equal(first, again)
    assert bool((wide > first).all())


class _OutOfMemoryAbove(InputXGradient):
    """The real explainer on a device that runs out of memory above ``limit`` rows per call."""

    def __init__(self, limit: int, error: Exception | None = None) -> None:
        self.limit = limit
        self.error = error or torch.cuda.OutOfMemoryError("CUDA out of memory. Tried 2 GiB")
        self.calls: list[int] = []

    def explain(self, model, batch, targets):  # type: ignore[no-untyped-def]
        self.calls.append(len(batch))
        if len(batch) > self.limit:
            raise self.error
        return super().explain(model, batch, targets)


def test_explain_chunks_halve_on_out_of_memory_and_keep_the_rows(case) -> None:
    from harness.chunking import explain_chunks

    model, batch, targets, _ = case
    explainer = _OutOfMemoryAbove(limit=3)
    parts, size = explain_chunks(model, explainer, batch, targets, 8)
    assert size == 2 and explainer.calls == [8, 4, 2, 2, 2, 2]
    whole = EXPLAINER.explain(model, batch, targets).pixels
    torch.testing.assert_close(torch.cat([p.pixels for p in parts]), whole)
    with pytest.raises(torch.cuda.OutOfMemoryError):  # one row per call still too many
        explain_chunks(model, _OutOfMemoryAbove(limit=0), batch, targets, 8)
    with pytest.raises(ValueError, match="not memory"):  # other errors are not retried
        explain_chunks(model, _OutOfMemoryAbove(0, ValueError("not memory")), batch, targets, 8)


def test_sensitivity_finishes_at_a_smaller_chunk_after_out_of_memory(case) -> None:
    model, batch, targets, attribution = case
    metric = harness.get_metric("robustness.avg_sensitivity", n_samples=4, chunk=32)
    explainer = _OutOfMemoryAbove(limit=10)
    torch.manual_seed(3)  # the noise seed comes from the global generator
    flaky = metric.evaluate(model, batch, targets, attribution, explainer=explainer)
    torch.manual_seed(3)
    steady = metric.evaluate(model, batch, targets, attribution, explainer=EXPLAINER)
    assert explainer.calls == [32, 16, 8, 8, 8, 8]  # 8 rows x 4 draws: two failed, four done
    torch.testing.assert_close(flaky.values, steady.values)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n_samples": 0}, "n_samples=0 - expected a positive integer"),
        ({"radius": -1.0}, "radius=-1.0 - expected a positive number"),
        ({"radius": float("inf")}, "radius=inf - expected a positive number"),
        ({"chunk": 0}, "chunk=0 - expected a positive integer"),
    ],
)
def test_bad_sensitivity_parameters_are_named(case, params: dict, message: str) -> None:
    from harness.errors import PluginError

    model, batch, targets, attribution = case
    metric = harness.get_metric("robustness.avg_sensitivity", **params)
    with pytest.raises(PluginError, match=message):
        metric.evaluate(model, batch, targets, attribution, explainer=EXPLAINER)
