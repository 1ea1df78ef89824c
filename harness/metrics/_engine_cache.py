"""A small, bounded, verified result cache for the perturbation engine.

Keys name the model (identity plus a fingerprint of its weights), the request
(e.g. ``("clean", ids)`` or a perturbation schedule) and the rows; a hit is
served only after the stored copies of the request's tensors (images,
targets, attributions) compare equal to the new ones, so a batch with the
same ids but different pixels never receives stale results.

Weights fingerprint: the train/eval mode of every submodule, and for every
parameter and buffer (persistent or not) its storage address, its in-place
version counter and its shape, plus checksums of the values: one xxh3 hash of
the bytes of the CPU tensors, and for tensors on other devices two float sums
(the plain sum and the sum weighted by position). The version counter catches
in-place updates (``reset_parameters``, ``load_state_dict``, optimiser steps);
the checksums also catch writes through ``.data``, which bypass the version
counter, including permutations (e.g. reordered class rows), which keep the
plain sum; a deep copy (as sanity checks make) is a different object, and
entries hold a weak reference to their model so a freed model's id can never
be confused with a new one.

Inside :func:`weights_pinned` (a metric evaluation: its forward passes never
write weights) the checksums of a module are computed once and reused while
its layout (addresses, version counters, shapes) is unchanged: checksumming
ResNet18's weights costs milliseconds, and one metric asks up to four times.
"""

from __future__ import annotations

import itertools
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import xxhash
from torch import Tensor, nn

MAX_ENTRIES = 32
MAX_BYTES = 512 * 2**20


@dataclass
class _Entry:
    model: weakref.ReferenceType[Any]
    tensors: tuple[Tensor, ...]
    result: Tensor
    nbytes: int


_CACHE: OrderedDict[Hashable, _Entry] = OrderedDict()
_BYTES = [0]


_PINNED: list[weakref.WeakKeyDictionary[nn.Module, tuple[Hashable, ...]]] = []


@contextmanager
def weights_pinned() -> Iterator[None]:
    """Inside the block, fingerprint each module's weight values once per layout (nestable)."""
    if _PINNED:
        yield
        return
    _PINNED.append(weakref.WeakKeyDictionary())
    try:
        yield
    finally:
        _PINNED.clear()


_RAMPS: dict[tuple[torch.device, torch.dtype], Tensor] = {}
_RAMP_MAX = 1 << 20  # position weights kept per device and dtype: 4 MB in float32


def _ramp(device: torch.device, dtype: torch.dtype, n: int) -> Tensor:
    """Return position weights 1, 2, ..., ``n`` (``n`` <= ``_RAMP_MAX``) on ``device``."""
    key = (device, dtype)
    ramp = _RAMPS.get(key)
    if ramp is None or len(ramp) < n:
        size = min(_RAMP_MAX, 1 << (n - 1).bit_length())  # powers of two: few regrowths
        ramp = torch.arange(1, size + 1, device=device, dtype=dtype)
        _RAMPS[key] = ramp
    return ramp[:n]


def _position_weighted_sum(t: Tensor) -> Tensor:
    """Return ``sum_i w_i t_i`` over the flat ``t``, weights depending on the position ``i``.

    Up to ``_RAMP_MAX`` values the weight is ``i + 1``; longer tensors are cut
    into blocks of ``_RAMP_MAX`` and value ``j`` of block ``b`` weighs
    ``(b + 1) (j + 1)``, so no weight vector as long as the largest layer
    (100 million values for VGG16's first linear layer) is ever built.
    """
    n = t.numel()
    if n <= _RAMP_MAX:
        return torch.dot(t, _ramp(t.device, t.dtype, n))
    blocks, tail = divmod(n, _RAMP_MAX)
    ramp = _ramp(t.device, t.dtype, _RAMP_MAX)
    total = torch.dot(t[: blocks * _RAMP_MAX].view(blocks, _RAMP_MAX).mv(ramp), ramp[:blocks])
    if tail:
        total = total + (blocks + 1) * torch.dot(t[blocks * _RAMP_MAX :], ramp[:tail])
    return total


_SMALL = 1 << 16  # tensors below this many values are checksummed together


def _flat(t: Tensor) -> Tensor:
    """Return ``t`` as one dimension in memory order (a view for channels-last weights too)."""
    t = t.detach()
    if (
        t.dim() == 4
        and not t.is_contiguous()
        and t.is_contiguous(memory_format=torch.channels_last)
    ):
        t = t.permute(0, 2, 3, 1)
    return t.reshape(-1)


def _float_sums(tensors: list[Tensor]) -> tuple[float, ...]:
    """Sum (float64) and position-weighted sum (a BLAS dot product) of the floating tensors.

    Each large tensor gets its own pair; the small ones (biases, norms, the
    whole of a small model) are concatenated per device and dtype first, so a
    model of a few thousand weights costs two reductions, not two per tensor.
    """
    floats = [_flat(t) for t in tensors if t.is_floating_point() and t.numel()]
    if not floats:
        return ()
    wide = [t if t.dtype in (torch.float32, torch.float64) else t.float() for t in floats]
    small: dict[tuple[torch.device, torch.dtype], list[Tensor]] = {}
    for t in wide:
        if t.numel() < _SMALL:
            small.setdefault((t.device, t.dtype), []).append(t)
    parts = [t for t in wide if t.numel() >= _SMALL] + [torch.cat(g) for g in small.values()]
    with torch.no_grad():
        sums = [
            s
            for t in parts
            for s in (t.sum(dtype=torch.float64), _position_weighted_sum(t).double())
        ]
        return tuple(torch.stack(sums).tolist())


def _checksums(tensors: list[Tensor]) -> tuple[Hashable, ...]:
    """Checksums of the tensors' values: one xxh3 hash of the CPU ones, float sums of the others.

    On the CPU every byte is hashed in memory order (any change of any value,
    of any dtype, changes it; ResNet18's weights: 1.4-1.8 ms against 10 ms for the
    float sums on an AMD EPYC, 2 threads); other devices are summed where the
    tensors are (:func:`_float_sums`), as copying them to the host would cost more.
    """
    hashed = xxhash.xxh3_128()
    others = []
    for t in tensors:
        if t.device.type != "cpu":
            others.append(t)
        elif t.numel() and not t.is_quantized:  # quantized: version counter and shape only
            hashed.update(_bytes(_flat(t)))
    return (hashed.digest(), *_float_sums(others))


def _bytes(flat: Tensor) -> memoryview:
    """Return the bytes of a one-dimensional CPU tensor's values, in order."""
    return flat.contiguous().view(torch.uint8).numpy().data


def weights_fingerprint(module: nn.Module) -> tuple[Hashable, ...]:
    """Return a fingerprint that changes whenever the model's computation can change.

    It covers every parameter and buffer (values, not only identity), every
    submodule (swapping ``nn.ReLU`` for ``nn.Tanh`` changes it), its train /
    eval mode and its forward hooks. A plain attribute read in ``forward``
    (e.g. a temperature) is not seen: after changing one, call
    :func:`harness.clear_metric_cache` or wrap the module anew.
    """
    modules = list(module.modules())  # one walk of the tree (this runs on every metric call)
    tensors: list[Tensor] = [  # every parameter and buffer, persistent or not
        t for m in modules for t in (*m._parameters.values(), *m._buffers.values()) if t is not None
    ]
    layout = tuple((t.data_ptr(), t._version, tuple(t.shape), str(t.dtype)) for t in tensors)
    structure = tuple(
        (id(m), m.training, tuple(m._forward_hooks), tuple(m._forward_pre_hooks)) for m in modules
    )
    head = (structure, layout)
    pinned = _PINNED[0].get(module) if _PINNED else None
    if pinned is not None and pinned[:2] == head:
        return pinned
    fingerprint = (*head, _checksums(tensors))
    if _PINNED:
        _PINNED[0][module] = fingerprint
    return fingerprint


def model_key(model: object, *, weights: bool = True) -> Hashable | None:
    """Return a hashable key for ``model`` (and its weights), or None when uncachable.

    Models without a torch ``module`` give None with ``weights=True``: their
    state cannot be fingerprinted cheaply, so their results are never cached.
    """
    module = getattr(model, "module", None)
    ident = (type(model).__qualname__, id(model), id(module))
    if not weights:
        return ident
    if not isinstance(module, nn.Module):
        return None
    try:
        fingerprint = weights_fingerprint(module)
    except RuntimeError:  # inference-mode tensors keep no version counter: not cachable
        return None
    return (ident, getattr(model, "task", None), fingerprint)


def _same(a: Tensor, b: Tensor) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and a.device == b.device and torch.equal(a, b)


def shared(
    model: object,
    request: Hashable,
    tensors: Sequence[Tensor],
    compute: Callable[[], Tensor],
) -> Tensor:
    """Return ``compute()``, reusing a stored result for an identical request.

    Parameters
    ----------
    model : Model
        The model the result depends on; its weights are part of the key.
    request : hashable
        What is computed (a tag and its parameters, e.g. a schedule and batch ids).
    tensors : sequence of Tensor
        Every tensor the result depends on besides the model; compared exactly on a hit.
    compute : callable
        Computes the result on a miss.

    Returns
    -------
    Tensor
        A fresh copy; callers may modify it.
    """
    from harness.metrics._engine import CONFIG

    mkey = model_key(model) if CONFIG.cache else None
    if mkey is None:
        return compute()
    key = (mkey, request)
    entry = _CACHE.get(key)
    if entry is not None and entry.model() is model and len(entry.tensors) == len(tensors):
        if all(_same(a, b) for a, b in zip(entry.tensors, tensors, strict=True)):
            _CACHE.move_to_end(key)
            return entry.result.clone()
    result = compute()
    stored = tuple(t.detach().clone() for t in tensors)
    nbytes = sum(t.numel() * t.element_size() for t in (*stored, result))
    if nbytes <= MAX_BYTES:
        _store(key, _Entry(weakref.ref(model), stored, result.detach().clone(), nbytes))
    return result


def _store(key: Hashable, entry: _Entry) -> None:
    """Store ``entry``, first dropping entries of freed models, then the oldest over the limits."""
    for stale in [k for k, e in _CACHE.items() if k == key or e.model() is None]:
        _BYTES[0] -= _CACHE.pop(stale).nbytes
    _CACHE[key] = entry
    _BYTES[0] += entry.nbytes
    while len(_CACHE) > MAX_ENTRIES or _BYTES[0] > MAX_BYTES:
        _, dropped = _CACHE.popitem(last=False)
        _BYTES[0] -= dropped.nbytes


MEMO_ENTRIES = 16384
MEMO_BYTES = 64 * 2**20
MEMO_MODELS = 64

_MEMO: OrderedDict[Hashable, tuple[weakref.ReferenceType[Any], Tensor]] = OrderedDict()
_MEMO_BYTES = [0]
_MEMO_MODELS: OrderedDict[Hashable, int] = OrderedDict()
_SERIALS = itertools.count()


def _model_serial(mkey: Hashable) -> int:
    """Return a number standing for the model key ``mkey`` in remembered entries.

    A model key holds its weights fingerprint (tens of kilobytes for a
    ResNet); entries name it by number, and only the ``MEMO_MODELS`` most
    recent keys keep one (an evicted key's entries can no longer be found and
    age out).
    """
    serial = _MEMO_MODELS.get(mkey)
    if serial is None:
        serial = _MEMO_MODELS[mkey] = next(_SERIALS)
        if len(_MEMO_MODELS) > MEMO_MODELS:
            _MEMO_MODELS.popitem(last=False)
    else:
        _MEMO_MODELS.move_to_end(mkey)
    return serial


def digest(t: Tensor) -> bytes:
    """Return a 128-bit xxh3 hash of a CPU tensor's values (in row-major order)."""
    return xxhash.xxh3_128_digest(_bytes(t.detach().reshape(-1)))


def remembered_logits(model: object, inputs: Tensor, compute: Callable[[], Tensor]) -> Tensor:
    """Return ``compute()``, the logits of ``inputs``, reusing those of identical inputs seen before.

    A perturbation explainer evaluates the model on hundreds of perturbed
    copies per image; explaining the same image again with the same draws
    (the random logit test's other class, a re-run) evaluates the very same
    copies. Here each call's logits are kept under the model's key (weights
    fingerprint included; see :func:`_model_serial`) and a 128-bit xxh3 hash of
    the inputs' bytes (with their shape and dtype), so a repeated call costs a hash: 0.06 ms for 64
    images of 128 x 128 on this CPU, against about 250 ms of ResNet18 forward
    passes. Only logits are stored (``MEMO_BYTES`` at most). Inputs off the
    CPU are never hashed (the copy to the host could cost as much as the
    forward pass), nor are models without a weights key. Entries of freed
    models age out (a weak reference keeps a new model at a reused address
    from reading them).
    """
    from harness.metrics._engine import CONFIG

    mkey = model_key(model) if CONFIG.cache and inputs.device.type == "cpu" else None
    if mkey is None:
        return compute()
    key = (_model_serial(mkey), tuple(inputs.shape), inputs.dtype, digest(inputs))
    entry = _MEMO.get(key)
    if entry is not None and entry[0]() is model:
        _MEMO.move_to_end(key)
        return entry[1].clone()
    result = compute()
    stored = result.detach().clone()
    if entry is not None:  # a freed model's entry (its key's ids reused): replace it
        _MEMO_BYTES[0] -= _nbytes(_MEMO.pop(key)[1])
    _MEMO[key] = (weakref.ref(model), stored)
    _MEMO_BYTES[0] += _nbytes(stored)
    while len(_MEMO) > MEMO_ENTRIES or _MEMO_BYTES[0] > MEMO_BYTES:
        _, (_, dropped) = _MEMO.popitem(last=False)
        _MEMO_BYTES[0] -= _nbytes(dropped)
    return result


def _nbytes(t: Tensor) -> int:
    return t.numel() * t.element_size()


def cache_clear() -> None:
    """Forget every stored result and remembered logits (benchmarks call it between repeats)."""
    _CACHE.clear()
    _BYTES[0] = 0
    _MEMO.clear()
    _MEMO_BYTES[0] = 0
    _MEMO_MODELS.clear()
