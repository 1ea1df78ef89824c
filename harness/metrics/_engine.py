"""Shared perturbation engine: batched, chunked, cached forward passes for metrics.

Every metric that re-runs the model describes its perturbed inputs as a
function ``make(flat_idx) -> images`` over ``N * S`` flat indices (row
``i // S``, step ``i % S``). The engine evaluates them in chunks on the
model's device, without a Python loop over pixels, steps or single images:

- chunks adapt to memory: an out-of-memory error halves the chunk size and
  retries, and the smaller size is remembered for that model and input shape;
- inference runs under ``torch.inference_mode`` and, for a
  :class:`~harness.contracts.TorchModel` whose forward takes images only, through
  a frozen TorchScript graph (see :mod:`harness.metrics._engine_graph`), which
  PEERS.md measured 1.45-1.53x faster on CPU with equal logits;
- results are cached (:func:`shared`), so metrics asking for the same
  perturbed inputs (pixel flipping and deletion AUC with one schedule), and
  explainers scored on the same batch (the unperturbed forward), share passes;
- freed buffers stay in the process between chunks (glibc's malloc
  thresholds are raised once, :mod:`harness.metrics._allocator`), and a
  metric's ``_score`` decorated with :func:`engine_scope` fingerprints its
  model's weights once per call;
- every image evaluated is counted (:func:`count_forwards`) so benchmarks can
  state the forward-pass floor.
"""

from __future__ import annotations

import functools
import logging
import math
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from harness.contracts import Batch, Model, Task
from harness.contracts.validation import check_logits
from harness.errors import ContractViolation
from harness.metrics._allocator import keep_freed_memory
from harness.metrics._engine_cache import (
    cache_clear,
    model_key,
    remembered_logits,
    shared,
    weights_pinned,
)
from harness.metrics._engine_graph import Forward, fast_forward, plain_module
from harness.substeps import report_substep

log = logging.getLogger(__name__)

__all__ = [
    "EngineConfig",
    "ForwardStats",
    "cache_clear",
    "chunk_size",
    "clean_logits",
    "configure",
    "count_forwards",
    "engine_scope",
    "evaluate",
    "inference_logits",
    "is_oom",
    "release_cached_memory",
    "model_key",
    "shared",
    "target_scores",
    "tune_allocator",
    "weights_pinned",
]

F = TypeVar("F", bound=Callable[..., Any])
OUTPUTS = ("probability", "logit", "correct")


@dataclass
class EngineConfig:
    """Engine settings; change them with :func:`configure`.

    Attributes
    ----------
    max_batch : int or None
        Images per forward chunk. None sizes chunks by :func:`budget_size`
        (an image's pixels, whatever its channels; a token sequence's length):
        2**18 per chunk on CPU (64 images at 64 x 64, 16 at 128 x 128, 5 at
        224 x 224: the fastest batch sizes measured for ResNet18 in PEERS.md
        and here; larger batches were slower on this CPU) and 2**22 on other
        devices, at most 1024 images.
    freeze : bool
        Try a frozen TorchScript graph for image-only torch models.
    tune_allocator : bool
        Raise glibc's malloc thresholds before the first chunk, so freed
        tensor buffers are reused instead of page-faulted back in (see
        :mod:`harness.metrics._allocator`; ``HARNESS_TUNE_MALLOC=0`` also turns it off).
    freeze_min_images : int
        Build a graph once the requests for a model's module add up to this
        many images (a graph built before is used for any size), so a model
        seen briefly stays eager while one scored by many small requests (a
        leaderboard's explainers x metrics) gets its graph: building one costs
        about as much as 100-400 eager forwards (0.7 s for ResNet18 at 64 px,
        3.6 s for VGG16-BN at 128 px, on this CPU).
    cache : bool
        Reuse results of identical requests (see :func:`shared`).
    """

    max_batch: int | None = None
    freeze: bool = True
    tune_allocator: bool = True
    freeze_min_images: int = 512
    cache: bool = True


CONFIG = EngineConfig()
_LEARNED: dict[tuple[object, ...], int] = {}


@dataclass
class ForwardStats:
    """Counts of model evaluations inside a :func:`count_forwards` block.

    ``calls`` / ``images`` count successful forward passes; ``retries`` counts
    chunks retried at half size after an out-of-memory error.
    """

    calls: int = 0
    images: int = 0
    retries: int = 0
    chunk_sizes: list[int] = field(default_factory=list)


_COUNTERS: list[ForwardStats] = []
_REQUESTED: weakref.WeakKeyDictionary[nn.Module, int] = weakref.WeakKeyDictionary()


@contextmanager
def count_forwards() -> Iterator[ForwardStats]:
    """Count the forward calls and images the engine evaluates inside the block."""
    stats = ForwardStats()
    _COUNTERS.append(stats)
    try:
        yield stats
    finally:
        _COUNTERS.remove(stats)


@contextmanager
def configure(**changes: object) -> Iterator[EngineConfig]:
    """Temporarily change :data:`CONFIG` fields (e.g. ``max_batch=8``)."""
    old = {k: getattr(CONFIG, k) for k in changes}
    for k, v in changes.items():
        setattr(CONFIG, k, v)
    _LEARNED.clear()
    try:
        yield CONFIG
    finally:
        for k, v in old.items():
            setattr(CONFIG, k, v)
        _LEARNED.clear()


def tune_allocator() -> None:
    """Keep freed buffers for the next chunk (:mod:`harness.metrics._allocator`) if configured."""
    if CONFIG.tune_allocator:
        keep_freed_memory()


def engine_scope(method: F) -> F:
    """Decorate a metric's ``_score``: allocator tuned, weights fingerprinted once per call.

    A metric asks the cache and the graph builder for its model's weights
    fingerprint up to four times; inside the scope the weight sums are
    computed once (:func:`weights_pinned`).
    """

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        tune_allocator()
        with weights_pinned():
            return method(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def budget_size(shape: tuple[int, ...]) -> int:
    """Return what chunk budgets count per input of ``shape``: H x W for (C, H, W), else every value.

    Activations grow with an image's pixels, not its input channels: counting
    channels gave a 3 x 224 x 224 ResNet18 chunks of one image, 12.5 ms per
    image on this CPU against 8.9 ms in chunks of five (1.4x).
    """
    if len(shape) == 3:
        return max(1, shape[1] * shape[2])
    return max(1, math.prod(shape))


def _default_chunk(device: torch.device, shape: tuple[int, ...]) -> int:
    """Images per chunk when ``max_batch`` is None (see :class:`EngineConfig`)."""
    budget = 2**18 if device.type == "cpu" else 2**22
    return max(1, min(1024, budget // budget_size(shape)))


def _chunk_for(model: Model, shape: tuple[int, ...]) -> int:
    """Images per chunk for ``model`` on inputs of ``shape`` (learned after an OOM)."""
    default = CONFIG.max_batch or _default_chunk(model.device, shape)
    learned = _LEARNED.get((model_key(model, weights=False), shape), default)
    return max(1, min(learned, default))


def chunk_size(model: Model, images: Tensor) -> int:
    """Images per forward chunk the engine uses for ``model`` on images like ``images``."""
    return _chunk_for(model, tuple(images.shape[1:]))


_OOM_MESSAGES = ("out of memory", "can't allocate memory", "status_alloc_failed")


def release_cached_memory(device: torch.device) -> None:
    """Return the CUDA caching allocator's free blocks after an out-of-memory error."""
    if device.type == "cuda":
        torch.cuda.empty_cache()


def is_oom(exc: BaseException) -> bool:
    """Return True for an out-of-memory error on any device (the engine halves its chunk then).

    ``torch.OutOfMemoryError`` (CUDA, and other accelerators that raise it), a
    RuntimeError saying "out of memory" (e.g. MPS), a cuBLAS / cuDNN workspace
    allocation failure (``CUBLAS_STATUS_ALLOC_FAILED``, ``CUDNN_STATUS_ALLOC_FAILED``),
    or the CPU allocator's "can't allocate memory" (a plain RuntimeError in torch).
    """
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    message = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(sign in message for sign in _OOM_MESSAGES)


def _requested(module: nn.Module | None, images: int) -> int:
    """Add ``images`` to the images requested of ``module`` so far; return the sum."""
    if module is None:
        return images
    _REQUESTED[module] = _REQUESTED.get(module, 0) + images
    return _REQUESTED[module]


def _graph(model: Model, module: nn.Module | None, example: Tensor, images: int) -> Forward | None:
    """Count ``images`` more requested of ``module``; its graph for ``example``'s shape, or None.

    A graph is built once the requests add up to ``CONFIG.freeze_min_images``.
    """
    build = _requested(module, images) >= CONFIG.freeze_min_images
    return fast_forward(model, example, enabled=CONFIG.freeze, build=build)


def _forwarder(
    model: Model, batch: Batch, example: Tensor, total: int, perturbs: str
) -> Callable[[Tensor, Tensor], Tensor]:
    """Return ``forward(rows, inputs) -> logits`` for perturbed ``perturbs`` ("images" or "tokens").

    A frozen graph if one is verified; else, for an image-only TorchModel, its
    module called on the images (checked as ``model.logits`` checks them);
    else ``model.logits`` on the chunk's rows with that field replaced.
    """
    fast = direct = None
    if perturbs == "images" and batch.tokens is None:
        direct = plain_module(model)
        fast = _graph(model, direct, example, total)

    def forward(rows: Tensor, images: Tensor) -> Tensor:
        if fast is not None:
            out = fast(images)
        elif direct is not None:
            out = check_logits(direct(images), len(images), model=model)
        else:
            rows_batch = batch.index(rows)
            if perturbs == "tokens":
                out = model.logits(replace(rows_batch, tokens=images))
            else:
                out = model.logits(replace(rows_batch, images=images))
        for stats in _COUNTERS:
            stats.calls += 1
            stats.images += len(images)
            stats.chunk_sizes.append(len(images))
        return out

    return forward


def _hooked(module: nn.Module) -> bool:
    """Whether a forward (pre-)hook would run in ``module``: a graph would skip it."""
    from torch.nn.modules import module as torch_module

    if torch_module._global_forward_hooks or torch_module._global_forward_pre_hooks:
        return True
    return any(m._forward_hooks or m._forward_pre_hooks for m in module.modules())


def inference_logits(model: Model, batch: Batch) -> Tensor:
    """Return ``model.logits(batch)`` without gradients, through the fastest verified graph.

    For an image-only :class:`~harness.contracts.TorchModel` in eval mode whose
    module has no forward hooks, the images run through the engine's graph of
    the model (:mod:`harness.metrics._engine_graph`, logits checked against
    eager ones when it is built); a graph is built once the model's requests,
    these calls' and the metrics', add up to ``CONFIG.freeze_min_images``
    images. For such a model in eval mode, logits of inputs identical to an
    earlier call's on the same weights are served from
    :func:`~harness.metrics._engine_cache.remembered_logits` (CPU inputs).
    Anything else calls ``model.logits`` under ``torch.no_grad``.
    """
    images = batch.images
    module = plain_module(model)
    with torch.no_grad(), weights_pinned():  # the memo's key and the graph's: one fingerprint
        if images is not None and module is not None and batch.tokens is None:
            if not _hooked(module):
                x = images.to(model.device)

                def compute() -> Tensor:
                    fast = _graph(model, module, x, len(x))
                    if fast is None:
                        return model.logits(batch)
                    return check_logits(fast(x), len(x), model=model)

                if any(m.training for m in module.modules()):  # dropout: a repeat is a new draw
                    return compute()
                return remembered_logits(model, x, compute)
        return model.logits(batch)


def target_scores(model: Model, logits: Tensor, targets: Tensor, output: str) -> Tensor:
    """Reduce logits (M, K) to one score per row for its target class.

    ``"probability"``: softmax (multi-class) or sigmoid (multi-label) of the
    target; ``"logit"``: the raw target logit; ``"correct"``: 1.0 when the model
    still predicts the target (arg-max for multi-class, probability > 0.5 for
    multi-label), else 0.0.
    """
    targets = targets.view(-1, 1).to(logits.device)
    if output == "logit":
        return logits.gather(1, targets).squeeze(1)
    probs = model.probabilities(logits)
    if output == "probability":
        return probs.gather(1, targets).squeeze(1)
    if model.task is Task.MULTILABEL:
        return (probs.gather(1, targets).squeeze(1) > 0.5).to(logits.dtype)
    return (logits.argmax(dim=1, keepdim=True) == targets).squeeze(1).to(logits.dtype)


def require_eval(model: Model) -> None:
    """Raise a ContractViolation when any module of ``model`` is in training mode.

    Batch norm and dropout in training mode make a row's score depend on its
    chunk (and update running statistics): a metric needs a fixed model.
    """
    module = getattr(model, "module", None)
    if not isinstance(module, nn.Module):
        return
    if not any(m.training for m in module.modules()):
        return
    training = [repr(name or "(root)") for name, m in module.named_modules() if m.training]
    if training:
        more = f" and {len(training) - 3} more" if len(training) > 3 else ""
        raise ContractViolation(
            f"model {model.name!r}: module(s) {', '.join(training[:3])}{more} in training mode - "
            "expected eval mode for metrics (batch norm and dropout would make scores depend on "
            "the batch); call .eval()",
            plugin=model.name,
        )


def _run_chunks(
    model: Model,
    batch: Batch,
    total: int,
    steps: int,
    make: Callable[[Tensor], Tensor],
    reduce: Callable[[Tensor, Tensor], Tensor],
    perturbs: str = "images",
) -> Tensor:
    """Evaluate ``total`` perturbed inputs (``perturbs``) in chunks; ``reduce(logits, rows)``."""
    require_eval(model)
    tune_allocator()
    device = model.device
    source = getattr(batch, perturbs)
    shape = () if source is None else tuple(source.shape[1:])
    key = (model_key(model, weights=False), shape)
    chunk = _chunk_for(model, shape)
    parts: list[Tensor] = []
    start = 0
    forward: Callable[[Tensor, Tensor], Tensor] | None = None
    with torch.inference_mode():
        while start < total:
            stop = min(total, start + chunk)
            flat = torch.arange(start, stop, device=device)
            rows = torch.div(flat, steps, rounding_mode="floor")
            try:
                images = make(flat)
                if forward is None:
                    forward = _forwarder(model, batch, images, total, perturbs)
                logits = forward(rows, images)
            except RuntimeError as exc:
                if not is_oom(exc) or chunk == 1:
                    raise
                failed = stop - start
            else:
                failed = 0
            if failed:
                # the failed chunk's tensors (and the traceback holding them) are gone here
                images = logits = None  # type: ignore[assignment]
                chunk = max(1, chunk // 2)
                _LEARNED[key] = chunk
                for stats in _COUNTERS:
                    stats.retries += 1
                log.warning("out of memory at %d images per chunk; retrying at %d", failed, chunk)
                release_cached_memory(device)
                continue
            parts.append(reduce(logits.float(), rows))
            start = stop
            report_substep(start, total)
    return torch.cat(parts)


def evaluate(
    model: Model,
    batch: Batch,
    targets: Tensor,
    steps: int,
    make: Callable[[Tensor], Tensor],
    *,
    output: str = "probability",
    perturbs: str = "images",
) -> Tensor:
    """Return the (N, steps) target scores of perturbed copies built by ``make``.

    Parameters
    ----------
    model, batch, targets
        The model, the unperturbed batch (its other fields ride along) and
        the (N,) target class per row.
    steps : int
        Perturbed copies per row.
    make : callable
        ``make(flat_idx)`` returns the perturbed inputs for flat indices ``flat_idx``
        (M,), a contiguous range (one chunk), on the model's device: row
        ``i // steps``, step ``i % steps``; images
        (M, C, H, W), or token ids (M, L) when ``perturbs="tokens"``.
    output : {"probability", "logit", "correct"}
        Score of the target class, see :func:`target_scores`.
    perturbs : {"images", "tokens"}, default="images"
        The batch field ``make`` builds.
    """
    if output not in OUTPUTS:
        raise ValueError(f"engine: output {output!r} - expected one of {OUTPUTS}")
    targets = targets.to(model.device)

    def reduce(logits: Tensor, rows: Tensor) -> Tensor:
        return target_scores(model, logits, targets.index_select(0, rows), output)

    total = len(batch) * steps
    return _run_chunks(model, batch, total, steps, make, reduce, perturbs).view(len(batch), steps)


def clean_logits(model: Model, batch: Batch) -> Tensor:
    """Return the unperturbed logits (N, K), computed once per model weights and batch."""
    images = batch.images

    def compute() -> Tensor:
        if images is None:
            require_eval(model)
            with torch.inference_mode():
                return model.logits(batch).float()
        return _run_chunks(
            model, batch, len(batch), 1, lambda flat: images.index_select(0, flat), lambda lg, _: lg
        )

    tensors = [t for t in (batch.images, batch.tokens) if t is not None]
    return shared(model, ("clean", batch.ids, batch.texts), tensors, compute)
