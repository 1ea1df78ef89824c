"""An emulated CUDA device on the CPU: tests the device handling without a GPU.

Tensors "on CUDA" are instances of :class:`Cuda`, ordinary CPU tensors whose
``device`` reads ``cuda:0``. Once :func:`install` ran (for the rest of the
process: it patches ``torch.cuda`` and ``torch.Generator``, so use it in a
subprocess), ``torch.cuda.is_available()`` is True, so ``device: auto`` picks
CUDA; factories given ``device="cuda"``, ``.to("cuda")``, ``.cuda()`` and
modules moved to CUDA make ``Cuda`` tensors; every op on one returns one. The
arithmetic stays on the CPU, so values equal a CPU run's wherever the code
takes the same path (the CUDA branches of the code do run).

What a real GPU would refuse is recorded in :data:`VIOLATIONS` as (kind, op,
the deepest line of the project that called it), and the op is then computed
anyway, so one run lists every site:

- an op mixing a ``Cuda`` tensor with a CPU tensor of one or more dimensions
  (0-dim CPU tensors mix on CUDA too; so does a CPU index into a ``Cuda``
  tensor, as long as the values written are on CUDA);
- a CPU tensor indexed by a ``Cuda`` index;
- ``.numpy()`` of a ``Cuda`` tensor;
- a random op given a generator of the other device.

Not emulated: numerics (TF32, cuDNN algorithms), streams, memory, Ray workers.
"""

from __future__ import annotations

import collections
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

CUDA = torch.device("cuda", 0)
ROOT = Path(__file__).resolve().parents[2]
VIOLATIONS: collections.Counter[tuple[str, str, str]] = collections.Counter()
CUDA_OPS: collections.Counter[str] = collections.Counter()  # ops computed on Cuda tensors, by name

_DEVICE_GETTER = torch.Tensor.device
_IS_CUDA_GETTER = torch.Tensor.is_cuda
_INDEXING = {"__getitem__", "index_put_", "index_put", "_index_put_impl_"}
_PASS_THROUGH = {"copy_", "_has_compatible_shallow_copy_type", "set_"}
_NOT_TENSORS = {
    "tolist", "item", "__bool__", "__float__", "__int__", "__index__", "__len__", "dim", "size",
    "numel", "element_size", "data_ptr", "__repr__", "__format__", "stride", "storage_offset",
    "is_contiguous", "untyped_storage", "__hash__", "is_floating_point", "_version", "__eq__",
}  # fmt: skip


class FakeGenerator(torch._C.Generator):
    """A CPU generator that remembers whether it was asked for on CUDA."""

    def __new__(cls, device: Any = "cpu") -> FakeGenerator:
        return super().__new__(cls)

    def __init__(self, device: Any = "cpu") -> None:
        super().__init__()
        self.on_cuda = torch.device(device).type == "cuda"


def _site() -> str:
    """The deepest frame of the project outside this module, as ``path:line: code``."""
    frames = [f for f in traceback.extract_stack() if f.filename != __file__]
    f = ([f for f in frames if f.filename.startswith(f"{ROOT}/")] or frames)[-1]
    path = f.filename.removeprefix(f"{ROOT}/")
    return f"{path}:{f.lineno}: {f.line}"


def _record(kind: str, func: Callable[..., Any]) -> None:
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or str(func)
    VIOLATIONS[(kind, str(name), _site())] += 1


def _tensors(x: Any, out: list[torch.Tensor]) -> list[torch.Tensor]:
    if isinstance(x, torch.Tensor):
        out.append(x)
    elif isinstance(x, list | tuple):
        for y in x:
            _tensors(y, out)
    elif isinstance(x, dict):
        for y in x.values():
            _tensors(y, out)
    return out


def _names_cuda(d: Any) -> bool | None:
    """True / False when ``d`` names a CUDA / other device, None when it is no device."""
    if isinstance(d, str):
        return d.startswith("cuda")
    if isinstance(d, torch.device):
        return d.type == "cuda"
    if isinstance(d, int) and not isinstance(d, bool):  # .to(0)
        return True
    return None


def _plain(t: torch.Tensor) -> torch.Tensor:
    return t.as_subclass(torch.Tensor) if isinstance(t, Cuda) else t


def _wrap(x: Any) -> Any:
    """Make every tensor in ``x`` a ``Cuda`` tensor (tuples, lists, structseqs kept)."""
    if isinstance(x, torch.Tensor):
        return x if isinstance(x, Cuda) else x.as_subclass(Cuda)
    if type(x) is tuple:
        return tuple(_wrap(y) for y in x)
    if isinstance(x, list):
        return [_wrap(y) for y in x]
    if isinstance(x, tuple):  # a structseq (sort's values, indices) or a namedtuple
        items = [_wrap(y) for y in x]
        try:
            return type(x)(items)
        except TypeError:
            return type(x)(*items)
    return x


def _to_target(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[bool | None, list[Any], dict[str, Any]]:
    """For a ``.to(...)`` call: (moves to CUDA? None if it names no device, CPU args, CPU kwargs)."""
    target = None
    cpu_args = list(args)
    for i, a in enumerate(args[1:], start=1):
        named = None if isinstance(a, bool | torch.dtype) else _names_cuda(a)
        if named is not None:
            target, cpu_args[i] = named, "cpu"
        elif isinstance(a, torch.Tensor):  # .to(other): other's device and dtype
            target, cpu_args[i] = isinstance(a, Cuda), a.dtype
    cpu_kwargs = dict(kwargs)
    if cpu_kwargs.get("device") is not None:
        target, cpu_kwargs["device"] = _names_cuda(cpu_kwargs["device"]), "cpu"
    return target, cpu_args, cpu_kwargs


def _check_generator(func: Callable[..., Any], generator: Any, cuda_op: bool) -> None:
    on_cuda = bool(getattr(generator, "on_cuda", False))
    if on_cuda != cuda_op:
        op, gen = ("cuda" if cuda_op else "cpu"), ("cuda" if on_cuda else "cpu")
        _record(f"generator on {gen} for a {op} op", func)


def _mixes_devices(name: str, args: tuple[Any, ...], cuda: bool, cpu: bool) -> bool:
    """Would CUDA refuse this op on these arguments?"""
    if not (cuda and cpu):
        return False
    if name in _INDEXING | {"__setitem__"} and isinstance(args[0], Cuda):
        values = args[2] if name != "__getitem__" and len(args) > 2 else None
        return (
            isinstance(values, torch.Tensor) and not isinstance(values, Cuda) and values.dim() > 0
        )
    return True


class Cuda(torch.Tensor):
    """A CPU tensor that says it is on ``cuda:0`` and checks what it meets."""

    def __deepcopy__(self, memo: dict[int, Any]) -> Cuda:
        if id(self) in memo:
            return memo[id(self)]  # type: ignore[no-any-return]
        with torch._C.DisableTorchFunctionSubclass():
            new = _plain(self).detach().clone().as_subclass(Cuda)
        new.requires_grad_(self.requires_grad)
        new.__dict__.update(self.__dict__)
        memo[id(self)] = new
        return new

    @classmethod
    def __torch_function__(  # noqa: C901 - one dispatch table, read top to bottom
        cls, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "") or ""
        owner = getattr(func, "__self__", None)
        if owner is _DEVICE_GETTER:
            return CUDA
        if owner is _IS_CUDA_GETTER:
            return True
        tensors = _tensors(args, []) + _tensors(kwargs, [])
        with torch._C.DisableTorchFunctionSubclass():
            if name in ("numpy", "__array__"):
                if isinstance(args[0], Cuda):
                    _record(".numpy() on CUDA", func)
                return func(*args, **kwargs)
            if name == "cpu":
                return (
                    _plain(args[0]).clone() if isinstance(args[0], Cuda) else func(*args, **kwargs)
                )
            if name == "cuda":
                return args[0] if isinstance(args[0], Cuda) else _wrap(_plain(args[0]).clone())
            if name == "to":
                target, cpu_args, cpu_kwargs = _to_target(args, kwargs)
                this, out = args[0], func(*cpu_args, **cpu_kwargs)
                if target is False:
                    return _plain(out).clone() if isinstance(this, Cuda) else out
                if target or (target is None and isinstance(this, Cuda)):
                    return _wrap(out.clone() if out is this and not isinstance(this, Cuda) else out)
                return out
            if name in _PASS_THROUGH:
                return func(*args, **kwargs)
            cuda = any(isinstance(t, Cuda) for t in tensors)
            cpu = any(not isinstance(t, Cuda) and t.dim() > 0 for t in tensors)
            if _mixes_devices(name, args, cuda, cpu):
                _record("mixed cpu/cuda", func)
            elif cpu and name in ("__getitem__", "__setitem__") and not isinstance(args[0], Cuda):
                if any(isinstance(t, Cuda) for t in _tensors(args[1:2], [])):
                    _record("cpu tensor indexed by a cuda index", func)
            out = func(*args, **kwargs)
        if cuda:
            CUDA_OPS[name] += 1
        if kwargs.get("generator") is not None:
            _check_generator(func, kwargs["generator"], cuda or isinstance(kwargs.get("out"), Cuda))
        if name in _NOT_TENSORS and not isinstance(out, torch.Tensor):
            return out
        return _wrap(out) if cuda and name != "__setitem__" else out


class FakeCudaMode(TorchFunctionMode):
    """Turns CUDA requests on plain tensors (factories, ``.to``, ``.cuda``) into ``Cuda`` tensors."""

    def __torch_function__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "") or ""
        if name == "to" and args and not isinstance(args[0], Cuda):
            target, cpu_args, cpu_kwargs = _to_target(args, kwargs)
            if target:
                out = func(*cpu_args, **cpu_kwargs)
                return _wrap(out.clone() if out is args[0] else out)
            return func(*args, **kwargs)
        if name == "cuda" and args and not isinstance(args[0], Cuda):
            return _wrap(args[0].clone())
        generator = kwargs.get("generator")
        if kwargs.get("device") is not None and _names_cuda(kwargs["device"]):
            if generator is not None:
                _check_generator(func, generator, True)
            return _wrap(func(*args, **dict(kwargs, device="cpu")))
        if generator is not None and not _tensors(args, []) + _tensors(kwargs, []):
            _check_generator(func, generator, False)  # else a Cuda argument's handler checks
        return func(*args, **kwargs)


def install() -> None:
    """Emulate one CUDA device for the rest of this process."""
    torch.Generator = FakeGenerator  # type: ignore[misc]
    torch.__future__.set_overwrite_module_params_on_conversion(True)
    cuda = torch.cuda
    cuda.is_available = lambda: True  # type: ignore[assignment]
    cuda.device_count = lambda: 1  # type: ignore[assignment]
    cuda.current_device = lambda: 0  # type: ignore[assignment]
    cuda.empty_cache = lambda: None  # type: ignore[assignment]
    cuda.synchronize = lambda device=None: None  # type: ignore[assignment]
    cuda.get_rng_state = lambda device="cuda": torch.get_rng_state()  # type: ignore[assignment]
    cuda.set_rng_state = lambda state, device="cuda": None  # type: ignore[assignment]
    cuda.manual_seed = lambda seed: None  # type: ignore[assignment]
    cuda.manual_seed_all = lambda seed: None  # type: ignore[assignment]
    optimizer = torch.optim.Optimizer
    optimizer._accelerator_graph_capture_health_check = lambda self: None  # type: ignore[attr-defined]
    FakeCudaMode().__enter__()


def violations() -> list[str]:
    """Every recorded site, one line each: ``count x kind: op at path:line: code``."""
    return [f"{n} x {kind}: {op} at {site}" for (kind, op, site), n in sorted(VIOLATIONS.items())]
