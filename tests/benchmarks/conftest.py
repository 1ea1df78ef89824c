"""Shared helpers of the opt-in benchmark suite (ours vs Quantus, one process).

Run: ``pytest -m benchmark tests/benchmarks -p no:randomly`` (or ``tox -e bench``).

Fixtures (the stable API other benchmark files use)
---------------------------------------------------
``resnet18_setup``   BenchSetup: torchvision ResNet18, 1 channel, 2 classes, 64x64, 16 samples.
``small_cnn_setup``  BenchSetup: a LeNet-sized CNN at 28x28, 16 samples.
``small_cnn32_setup``  the same CNN at 32x32.
``tiny_cnn_setup``   BenchSetup: a two-convolution CNN at 28x28 whose forwards are nearly free.
``bench``            a :class:`Bench` with ``interleaved``, ``best_of``, ``count_images``,
                     ``floor_seconds``, ``throughput``, ``row`` and ``record``.

Every setup uses ``HARNESS_BENCH_THREADS`` torch threads and as many BLAS
threads for NumPy (default 2), seeded
random weights (timings do not need a trained model), smooth synthetic images
with a bright blob whose mask is the ground truth, targets = the model's
predicted class, and input x gradient attributions plus a 1e-6 relative jitter
(tie-free, so pixel orders are the same in both libraries).

Rows recorded with ``bench.record(bench.row(...))`` are merged by (setup,
metric) into ``docs/benchmarks.md`` when the session ends; rows of metrics
that were not run keep their previous figures.
"""

from __future__ import annotations

import json
import os
import platform
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits
from torch import Tensor, nn

from harness.arrays import ModuleModel
from harness.contracts import (
    Attribution,
    Batch,
    DatasetInfo,
    Explainer,
    Modality,
    Model,
    Task,
    TorchModel,
)
from harness.metrics import _engine

THREADS = int(os.environ.get("HARNESS_BENCH_THREADS", "2"))
DOC = Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md"
_DATA_TAG = "bench-data"
FLOOR_REPEATS = 9  # samples of the model's throughput behind each row's floor


class InputXGradient(Explainer):
    """Input x gradient of the target logit (a tie-free, batched reference explainer)."""

    name: ClassVar[str] = "bench.input_x_gradient"

    def _explain(self, model: Model, batch: Batch, targets: Tensor) -> Attribution:
        images = batch.images
        if images is None:
            raise ValueError("InputXGradient needs images")
        x = images.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            logits = model.logits(batch.with_images(x))
            picked = logits.gather(1, targets.view(-1, 1)).sum()
            (grad,) = torch.autograd.grad(picked, x)
        return Attribution(pixels=(grad * x).detach().sum(dim=1))


def quantus_explain(
    model: nn.Module, inputs: np.ndarray, targets: np.ndarray, **_: Any
) -> np.ndarray:
    """Quantus ``explain_func``: input x gradient as (N, 1, H, W) numpy."""
    x = torch.as_tensor(np.asarray(inputs), dtype=torch.float32).requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
        picked = logits.gather(1, torch.as_tensor(np.asarray(targets)).long().view(-1, 1)).sum()
        (grad,) = torch.autograd.grad(picked, x)
    return (grad * x).detach().sum(dim=1, keepdim=True).numpy()


@dataclass(frozen=True)
class BenchSetup:
    """Model and inputs shared by ours and Quantus (numpy copies for Quantus)."""

    name: str
    model: TorchModel
    module: nn.Module
    batch: Batch
    targets: Tensor
    attribution: Attribution
    explainer: Explainer
    x: np.ndarray  # (N, 1, H, W) float32
    y: np.ndarray  # (N,) int64 targets
    a: np.ndarray  # (N, 1, H, W) float32 attributions
    s: np.ndarray  # (N, 1, H, W) target masks (0/1)


def small_cnn(size: int) -> nn.Module:
    """LeNet-sized CNN for 1-channel inputs of ``size`` x ``size`` and 2 classes."""
    flat = 16 * (((size - 2) // 2 - 2) // 2) ** 2
    return nn.Sequential(
        nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(flat, 32), nn.ReLU(), nn.Linear(32, 2),
    )  # fmt: skip


def tiny_cnn() -> nn.Module:
    """A two-convolution CNN (about 20k multiply-adds per 28x28 image, 20x less than LeNet).

    It stands for the regime the 10x target is about: a model so cheap that
    its forward passes cost almost nothing, as on a GPU, so the time left is
    each library's own work around them.
    """
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(4, 8, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 2),
    )  # fmt: skip


def resnet18_1ch() -> nn.Module:
    """torchvision ResNet18 with a 1-channel stem and 2 classes (random weights)."""
    import torchvision

    net = torchvision.models.resnet18(num_classes=2)
    net.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return net


def _images(n: int, size: int, seed: int) -> tuple[Tensor, Tensor]:
    """Smooth grayscale images in [0, 1] with one bright blob each, and blob masks."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.rand(n, 1, size // 4, size // 4, generator=g)
    base = nn.functional.interpolate(noise, size=(size, size), mode="bilinear", align_corners=False)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    cy, cx = (torch.rand(2, n, 1, 1, generator=g) * size * 0.6 + size * 0.2).unbind(0)
    blob = ((yy - cy) ** 2 + (xx - cx) ** 2) < (size / 8) ** 2
    images = (0.6 * base[:, 0] + 0.4 * blob.float()).unsqueeze(1).clamp(0, 1)
    return images.contiguous(), blob


def build_setup(
    name: str,
    make_net: Callable[[], nn.Module],
    *,
    n: int = 16,
    size: int = 64,
    seed: int = 0,
) -> BenchSetup:
    """Seed, build and wrap the net, make inputs, targets and input x gradient attributions.

    The net is built after seeding, so its random weights never depend on what ran before.
    """
    torch.set_num_threads(THREADS)
    threadpool_limits(THREADS)  # NumPy's BLAS (Quantus) gets as many threads as torch
    torch.manual_seed(seed)
    net = make_net()
    model = ModuleModel(net=net)
    model.build(DatasetInfo(Modality.IMAGE, Task.MULTICLASS, ("a", "b"), image_size=(size, size)))
    images, blob = _images(n, size, seed)
    with torch.no_grad():
        targets = net(images).argmax(dim=1)
    masks = torch.zeros(n, 2, size, size, dtype=torch.bool)
    masks[torch.arange(n), targets] = blob
    batch = Batch(
        ids=tuple(f"s{i}" for i in range(n)), labels=targets.clone(), images=images, masks=masks
    )
    explainer = InputXGradient()
    raw = explainer.explain(model, batch, targets).pixels
    assert raw is not None
    # Break ties (dead ReLUs give exact zeros) so both libraries sort pixels identically.
    jitter = torch.rand(raw.shape, generator=torch.Generator().manual_seed(seed + 7))
    pixels = raw + 1e-6 * raw.abs().amax(dim=(1, 2), keepdim=True) * jitter
    attribution = Attribution(pixels=pixels)
    return BenchSetup(
        name=name, model=model, module=net, batch=batch, targets=targets,
        attribution=attribution, explainer=explainer,
        x=images.numpy().copy(), y=targets.numpy().copy(),
        a=pixels.unsqueeze(1).numpy().copy(), s=blob.unsqueeze(1).numpy().astype(np.float32),
    )  # fmt: skip


@dataclass
class Comparison:
    """Best-of-N seconds of ours and Quantus, measured interleaved, and their last values."""

    ours_s: float
    quantus_s: float
    ours: Any
    quantus: Any

    @property
    def speedup(self) -> float:
        """Quantus seconds / our seconds."""
        return self.quantus_s / self.ours_s


@dataclass
class BenchRow:
    """One line of the benchmark table."""

    setup: str
    metric: str
    ours_s: float
    quantus_s: float | None
    forwards: int
    floor_s: float
    max_abs_diff: float | None
    note: str = ""
    threads: int = 0  # torch threads when measured (0: not recorded)

    @property
    def speedup(self) -> float | None:
        """Quantus / ours (> 1 means we are faster)."""
        return None if self.quantus_s is None else self.quantus_s / self.ours_s

    @property
    def quantus_over_floor(self) -> float | None:
        """Quantus / floor: the largest speed-up any code running these forwards could reach."""
        if self.quantus_s is None or self.floor_s <= 0:
            return None
        return self.quantus_s / self.floor_s

    @property
    def over_floor(self) -> float | None:
        """Ours / floor (1.0 = nothing but the unavoidable forward passes)."""
        return None if self.floor_s <= 0 else self.ours_s / self.floor_s


@dataclass
class Bench:
    """Timing, counting and recording helpers (the ``bench`` fixture)."""

    rows: list[BenchRow] = field(default_factory=list)
    _throughput: dict[tuple[str, int, bool], float] = field(default_factory=dict)

    @staticmethod
    def best_of(
        fn: Callable[[], Any], repeats: int = 3, before: Callable[[], None] | None = None
    ) -> tuple[float, Any]:
        """Return (best seconds, last value) of ``repeats`` calls; ``before`` runs untimed."""
        best, value = float("inf"), None
        for _ in range(repeats):
            if before is not None:
                before()
            t0 = time.perf_counter()
            value = fn()
            best = min(best, time.perf_counter() - t0)
        return best, value

    @staticmethod
    def interleaved(
        ours: Callable[[], Any],
        quantus: Callable[[], Any],
        repeats: int = 3,
        before: Callable[[], None] | None = None,
    ) -> Comparison:
        """Time ours and Quantus alternately (fair under shared-CPU noise); best of ``repeats``.

        ``before`` runs untimed before every call of either (default: clear our
        result cache and seed torch and numpy with 0).
        """
        prep = before or reset
        o_best = q_best = float("inf")
        o_val = q_val = None
        for _ in range(repeats):
            prep()
            t0 = time.perf_counter()
            o_val = ours()
            o_best = min(o_best, time.perf_counter() - t0)
            prep()
            t0 = time.perf_counter()
            q_val = quantus()
            q_best = min(q_best, time.perf_counter() - t0)
        return Comparison(o_best, q_best, o_val, q_val)

    @staticmethod
    def count_images(fn: Callable[[], Any]) -> tuple[Any, int]:
        """Run ``fn`` once with an empty cache; return (value, images our engine evaluated)."""
        reset()
        with _engine.count_forwards() as stats:
            value = fn()
        return value, stats.images

    def throughput(
        self,
        setup: BenchSetup,
        batch_size: int | None = None,
        frozen: bool = True,
        fresh: bool = False,
    ) -> float:
        """Images/s of the setup's model at ``batch_size`` (frozen graph or eager), best of 9.

        Nine samples, as short bursts on a shared VM vary by up to 4x: with
        three, the same row's floor moved 0.004-0.016 s between runs.

        ``batch_size`` None is the engine's default chunk for the setup's images.

        Cached per setup unless ``fresh`` (rows re-measure it next to their own
        timing, since the load of a shared machine drifts).
        """
        images = setup.batch.images
        assert images is not None
        if batch_size is None:
            batch_size = _engine._default_chunk(images.device, tuple(images.shape[1:]))
        key = (setup.name, batch_size, frozen)
        if fresh or key not in self._throughput:
            reps = -(-batch_size // len(images))
            x = images.repeat(reps, 1, 1, 1)[:batch_size].contiguous()
            fwd: Callable[[Tensor], Tensor] = setup.module
            if frozen:
                fwd = _engine.fast_forward(setup.model, x) or setup.module
            n_calls = max(2, int(256 / batch_size))
            with torch.inference_mode():
                fwd(x)

                def run() -> None:
                    for _ in range(n_calls):
                        fwd(x)

                best, _ = self.best_of(run, FLOOR_REPEATS)
            self._throughput[key] = n_calls * batch_size / best
        return self._throughput[key]

    def floor_seconds(
        self, setup: BenchSetup, images: int, frozen: bool = True, fresh: bool = False
    ) -> float:
        """Seconds that ``images`` forward passes need at the model's batched throughput."""
        return images / self.throughput(setup, frozen=frozen, fresh=fresh)

    def row(
        self,
        setup: BenchSetup,
        metric: str,
        comparison: Comparison,
        forwards: int,
        max_abs_diff: float | None,
        note: str = "",
    ) -> BenchRow:
        """Build a row; the floor uses our fastest inference mode (frozen graph when verified)."""
        floor = self.floor_seconds(setup, forwards, fresh=True) if forwards else 0.0
        return BenchRow(
            setup=setup.name, metric=metric, ours_s=comparison.ours_s,
            quantus_s=comparison.quantus_s, forwards=forwards, floor_s=floor,
            max_abs_diff=max_abs_diff, note=note, threads=torch.get_num_threads(),
        )  # fmt: skip

    def record(self, row: BenchRow) -> BenchRow:
        """Keep ``row`` for docs/benchmarks.md (written at session end)."""
        self.rows.append(row)
        return row


def reset() -> None:
    """Clear our engine's result cache and seed torch and numpy with 0."""
    _engine.cache_clear()
    torch.manual_seed(0)
    np.random.seed(0)


def max_abs_diff(ours: Any, theirs: Any) -> float:
    """Largest |ours - theirs| over all values (NaN-aware: NaN in both counts as equal)."""
    a = np.asarray(
        torch.as_tensor(ours).double().cpu().numpy() if isinstance(ours, Tensor) else ours,
        dtype=float,
    )
    b = np.asarray(theirs, dtype=float)
    both_nan = np.isnan(a) & np.isnan(b)
    diff = np.abs(a - b)
    diff[both_nan] = 0.0
    return float(np.nanmax(diff)) if diff.size else 0.0


_BENCH = Bench()


@pytest.fixture(scope="session")
def bench() -> Bench:
    """The session's :class:`Bench` (rows recorded here go to docs/benchmarks.md)."""
    return _BENCH


@pytest.fixture(scope="session")
def resnet18_setup() -> BenchSetup:
    """ResNet18, 1 channel, 2 classes, 64x64, 16 samples, 2 threads."""
    return build_setup("resnet18-64px", resnet18_1ch, n=16, size=64)


@pytest.fixture(scope="session")
def small_cnn_setup() -> BenchSetup:
    """LeNet-sized CNN at 28x28, 16 samples, 2 threads."""
    return build_setup("smallcnn-28px", lambda: small_cnn(28), n=16, size=28)


@pytest.fixture(scope="session")
def small_cnn32_setup() -> BenchSetup:
    """LeNet-sized CNN at 32x32, 16 samples, 2 threads."""
    return build_setup("smallcnn-32px", lambda: small_cnn(32), n=16, size=32)


@pytest.fixture(scope="session")
def tiny_cnn_setup() -> BenchSetup:
    """Two-convolution CNN at 28x28 (forwards nearly free, as on a GPU), 16 samples."""
    return build_setup("tinycnn-28px", tiny_cnn, n=16, size=28)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _load_rows() -> dict[tuple[str, str], dict[str, Any]]:
    if not DOC.exists():
        return {}
    match = re.search(rf"<!-- {_DATA_TAG}\n(.*?)\n-->", DOC.read_text(), re.S)
    if not match:
        return {}
    return {(r["setup"], r["metric"]): r for r in json.loads(match.group(1))}


def write_table(rows: list[BenchRow]) -> None:
    """Merge ``rows`` into docs/benchmarks.md by (setup, metric) and rewrite the table."""
    merged = _load_rows()
    for r in rows:
        merged[(r.setup, r.metric)] = asdict(r)
    ordered = [BenchRow(**merged[k]) for k in sorted(merged)]
    head = (
        "| setup | threads | metric | ours s | Quantus s | Quantus/ours | forwards | floor s "
        "| ours/floor | Quantus/floor | max abs diff | note |\n"
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n"
    )
    body = "".join(
        f"| {r.setup} | {r.threads or '-'} | {r.metric} | {r.ours_s:.3f} | "
        f"{_fmt(r.quantus_s, '.3f')} | "
        f"{_fmt(r.speedup, '.2f')}{'x' if r.speedup else ''} | {r.forwards} | "
        f"{r.floor_s:.3f} | {_fmt(r.over_floor, '.2f')} | "
        f"{_fmt(r.quantus_over_floor, '.1f')}{'x' if r.quantus_over_floor else ''} | "
        f"{_fmt(r.max_abs_diff, '.2g')} | {r.note} |\n"
        for r in ordered
    )
    text = DOC.read_text() if DOC.exists() else ""
    start, end = "<!-- bench-table:start -->", "<!-- bench-table:end -->"
    env = (
        f"Last written {time.strftime('%Y-%m-%d %H:%M')}: torch {torch.__version__}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs.\n\n"
    )
    data = "[\n" + ",\n".join(json.dumps(asdict(r)) for r in ordered) + "\n]"
    block = f"{start}\n{env}{head}{body}\n<!-- {_DATA_TAG}\n{data}\n-->\n{end}"
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    else:
        text = (text or "# Benchmarks\n\n") + "\n" + block + "\n"
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write the rows recorded in this session into docs/benchmarks.md."""
    if _BENCH.rows:
        write_table(_BENCH.rows)
