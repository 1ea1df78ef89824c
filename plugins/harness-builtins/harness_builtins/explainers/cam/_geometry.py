"""Where the feature cells of a CNN layer sit in the input: a stride and an offset per axis.

A CAM is a map over the cells of a layer; to lay it over the input, each cell
must sit at the centre of its receptive field. Plain bilinear resizing
(``align_corners=False``) puts cell ``i`` of a layer with total stride ``s`` at
pixel ``s i + (s - 1) / 2``. That holds for 2x2 stride-2 pooling (VGG), but
3x3 stride-2 convolutions and pooling with padding 1 (ResNet, DenseNet's stem)
centre cell ``i`` at ``s i``, so the plain map is shifted by ``(s - 1) / 2``
pixels (7.5 px at ``layer3`` of a ResNet).

:func:`feature_geometry` measures the placement instead of assuming it, on a
linearised deep copy of the network: every convolution and linear weight
becomes the positive constant ``1 / fan_in`` with no bias, every BatchNorm the
identity, every max-pool an average pool over the same window. Fed a positive
canvas, every activation is then positive, every ReLU the identity, and the
copy a linear stack of box filters: the input gradient of one cell is symmetric
about the centre of the cell's receptive field, so its centroid is that centre
exactly. Two neighbouring cells give the stride and the offset. The gradient is
checked to be a symmetric non-negative bump; anything else (an operation that
could not be linearised, such as a functional max-pool, which scatters the
gradient of a random canvas) gives None, and the caller resizes plainly.
"""

from __future__ import annotations

import copy
import logging
import weakref
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import torch
from torch import Tensor, nn

log = logging.getLogger(__name__)

Geometry = tuple[float, float, float, float]
"""``(stride_y, offset_y, stride_x, offset_x)``: cell (i, j) sits at (stride_y i + offset_y, ...)."""

CANVASES: tuple[int, ...] = (64, 128, 256, 512, 1024)
"""Canvas lengths tried in turn until a cell's receptive field fits along the measured axis."""

_NARROW = 64  # width of the strip across the measured axis (the other axis need not fit)
_BORDER_TOL = 1e-6  # gradient at the canvas edge, relative to its peak, that counts as "fits"
_SYMMETRY_TOL = 1e-3  # largest asymmetry of the gradient profile, relative to its peak
_CACHE_SIZE = 64
_CACHE: OrderedDict[Hashable, Geometry | None] = OrderedDict()  # by architecture, bounded
_SEEN: weakref.WeakKeyDictionary[nn.Module, dict[tuple[int, int], Geometry | None]] = (
    weakref.WeakKeyDictionary()
)  # by module object, the fast path; entries die with their module


class _GeometryError(Exception):
    """The linearised copy cannot place the layer's cells; the caller falls back."""


class _Stop(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised by the forward hook to skip the layers after the measured one."""


def feature_geometry(module: nn.Module, layer: nn.Module, channels: int) -> Geometry | None:
    """Return where the cells of ``layer`` sit in the input of ``module``, or None.

    Cell ``(i, j)`` of the layer's (h, w) output is centred at input pixel
    ``(stride_y * i + offset_y, stride_x * j + offset_x)``. The geometry is
    measured on a linearised deep copy on the CPU (see the module
    docstring); ``module`` itself is never modified. It depends on the
    architecture only, so results are cached by (module class, architecture,
    layer name, channels): a re-initialised or deep-copied model (as the
    randomisation sanity checks make) does not pay again. A second cache, keyed
    by the module object and the layer object, answers repeated calls without
    even building that key (so change a module's layers before explaining it,
    not between explanations).

    Parameters
    ----------
    module : nn.Module
        The network, called as ``module(images)``.
    layer : nn.Module
        A submodule of ``module`` returning (N, K, h, w) maps; when it runs
        more than once per forward pass, its first call is measured.
    channels : int
        Number of input channels.

    Returns
    -------
    tuple of float or None
        ``(stride_y, offset_y, stride_x, offset_x)``, or None when the geometry
        cannot be measured exactly: a module needing more inputs than the
        image, a layer without a 4-d output, an operation that could not be
        linearised, a receptive field wider than the largest canvas.
    """
    channels = int(channels)
    seen = _SEEN.setdefault(module, {})
    if (id(layer), channels) in seen:
        return seen[(id(layer), channels)]
    name = next((n for n, m in module.named_modules() if m is layer), None)
    architecture = tuple(
        (n, type(m).__module__, type(m).__qualname__, m.extra_repr())
        for n, m in module.named_modules()
    )
    key = (type(module), architecture, name, channels)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        seen[(id(layer), channels)] = _CACHE[key]
        return _CACHE[key]
    try:
        if name is None:
            raise _GeometryError("the layer is not a submodule of the module")
        geometry: Geometry | None = _measure(module, name, channels)
        log.debug("feature geometry of %r in %s: %s", name, type(module).__name__, geometry)
    except _GeometryError as exc:  # a network the linearised copy cannot measure
        log.debug(
            "feature geometry of %r in %s unavailable (%s); using plain bilinear resizing",
            name, type(module).__name__, exc,
        )  # fmt: skip
        geometry = None
    except Exception as exc:  # noqa: BLE001 - any failure of an arbitrary network: unknown geometry
        log.warning(
            "Grad-CAM: could not place the cells of layer %r of %s on the input (%s: %s); its "
            "maps are resized plainly (bilinear), which can shift them by half a cell",
            name, type(module).__name__, type(exc).__name__, exc,
        )  # fmt: skip
        geometry = None
    _CACHE[key] = seen[(id(layer), channels)] = geometry
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return geometry


def _measure(module: nn.Module, name: str, channels: int) -> Geometry:
    """Linearise a copy of ``module`` and measure the geometry of its layer ``name``."""
    net = _cpu_copy(module)  # the geometry is the architecture's: same on every device
    _linearise(net)
    net.to(dtype=torch.float32).eval()
    layer = net.get_submodule(name)
    stride_y, offset_y = _axis(net, layer, channels, axis=0)
    stride_x, offset_x = _axis(net, layer, channels, axis=1)
    return stride_y, offset_y, stride_x, offset_x


def _cpu_copy(module: nn.Module) -> nn.Module:
    """Deep-copy ``module`` with its tensors copied to the CPU (no second copy on its device)."""
    memo: dict[int, object] = {
        id(p): nn.Parameter(p.detach().to("cpu", copy=True), requires_grad=p.requires_grad)
        for p in module.parameters()
    }
    memo.update({id(b): b.detach().to("cpu", copy=True) for b in module.buffers()})
    return copy.deepcopy(module, memo)


def _linearise(net: nn.Module) -> None:
    """Make ``net`` a positive linear stack of box filters (in place: ``net`` is the copy).

    Max-pools become average pools over the same window that count the zero
    padding, like a zero-padded convolution. Every activation on a positive
    canvas is then positive, up to the canvas edges, so the copy is linear and
    a cell's input gradient does not depend on the canvas values.
    """
    for parent in list(net.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, nn.MaxPool2d):
                if child.return_indices or child.dilation not in (1, (1, 1)):
                    raise _GeometryError("max-pool with indices or dilation")
                box = nn.AvgPool2d(
                    child.kernel_size,
                    child.stride,
                    child.padding,
                    ceil_mode=child.ceil_mode,
                    count_include_pad=True,
                )
                setattr(parent, child_name, box)
    with torch.no_grad():
        for sub in net.modules():
            if isinstance(sub, nn.Conv1d | nn.Conv2d | nn.Conv3d | nn.Linear):
                sub.weight.fill_(1.0 / sub.weight[0].numel())
                if sub.bias is not None:
                    sub.bias.zero_()
            elif isinstance(
                sub, nn.BatchNorm1d | nn.BatchNorm2d | nn.BatchNorm3d | nn.SyncBatchNorm
            ):
                sub.running_mean = torch.zeros(sub.num_features)
                sub.running_var = torch.full((sub.num_features,), 1.0 - sub.eps)
                if sub.affine:
                    sub.weight.fill_(1.0)
                    sub.bias.zero_()
    for param in net.parameters():
        param.requires_grad_(False)


def _axis(net: nn.Module, layer: nn.Module, channels: int, axis: int) -> tuple[float, float]:
    """Return (stride, offset) along ``axis`` (0 rows, 1 columns) from growing strip canvases.

    The strip is long along ``axis`` and ``_NARROW`` pixels across: box filters
    are separable, so the gradient's profile along ``axis`` keeps its centre
    however narrow the strip is. A network that rejects the narrow strip gets a
    square canvas.
    """
    for length in CANVASES:
        for across in sorted({min(_NARROW, length), length}):
            shape = (length, across) if axis == 0 else (across, length)
            try:
                found = _measure_strip(net, layer, channels, shape, axis)
            except _GeometryError:
                raise
            except Exception as exc:  # a too small input for some layer: try a wider canvas
                if across == length:
                    raise
                log.debug("geometry strip %s rejected (%s); trying a square canvas", shape, exc)
                continue
            if found is None:
                break
            return found
    raise _GeometryError(f"receptive field wider than a {CANVASES[-1]} px canvas")


def _measure_strip(
    net: nn.Module,
    layer: nn.Module,
    channels: int,
    shape: tuple[int, int],
    axis: int,
) -> tuple[float, float] | None:
    """Return (stride, offset) along ``axis`` on one canvas, or None if the field does not fit."""
    outputs: list[Any] = []

    def stop(_module: nn.Module, _inputs: Any, output: Any) -> None:
        outputs.append(output)
        raise _Stop

    # positive and random: the linearised copy's gradient does not depend on the values,
    # but a maximum the copy still takes (a functional max-pool) then scatters it
    generator = torch.Generator().manual_seed(0)
    canvas = 0.5 + torch.rand(1, channels, *shape, generator=generator)
    canvas.requires_grad_(True)
    handle = layer.register_forward_hook(stop)
    try:
        with torch.enable_grad():
            net(canvas)
    except _Stop:
        pass
    except TypeError as exc:  # e.g. an image+text model: its forward needs more than an image
        raise _GeometryError(f"the forward refuses an image alone ({exc})") from exc
    finally:
        handle.remove()
    feat = outputs[0] if outputs else None
    if not isinstance(feat, Tensor) or feat.dim() != 4:
        got = tuple(feat.shape) if isinstance(feat, Tensor) else type(feat).__name__
        raise _GeometryError(f"layer output - expected a (N, K, h, w) map, got {got}")
    cells, across = feat.shape[2 + axis], feat.shape[3 - axis]
    if cells < 2 or across < 1:
        return None
    i, j = (cells - 1) // 2, (across - 1) // 2
    index = [(i, j), (i + 1, j)] if axis == 0 else [(j, i), (j, i + 1)]
    first = _centre(_profile(canvas, feat[0, :, index[0][0], index[0][1]].sum(), axis, True))
    if first is None:
        return None
    second = _centre(_profile(canvas, feat[0, :, index[1][0], index[1][1]].sum(), axis, False))
    if second is None:
        return None
    stride = round(second - first, 3) + 0.0
    if stride <= 0:
        raise _GeometryError(f"stride - expected a positive number, got {stride}")
    return stride, round(first - stride * i, 3) + 0.0


def _profile(canvas: Tensor, score: Tensor, axis: int, retain: bool) -> Tensor:
    """Return the input gradient of ``score`` summed over channels and the other axis (float64)."""
    if not score.requires_grad:
        raise _GeometryError("no gradient path from the input to the layer")
    (grad,) = torch.autograd.grad(score, canvas, retain_graph=retain)
    return grad[0].sum(dim=(0, 2 - axis)).double()


def _centre(profile: Tensor) -> float | None:
    """Return the centroid of a gradient profile, or None when it reaches the canvas edge.

    Raises when the profile is not a symmetric, non-negative bump, which
    happens when an operation of the network was not linearised.
    """
    if not bool(torch.isfinite(profile).all()) or float(profile.sum()) <= 0:
        raise _GeometryError("the gradient is zero or not finite")
    peak = float(profile.abs().max())
    if max(abs(float(profile[0])), abs(float(profile[-1]))) > _BORDER_TOL * peak:
        return None
    if float(profile.min()) < -_SYMMETRY_TOL * peak:
        raise _GeometryError("the gradient has negative parts")
    n = profile.numel()
    positions = torch.arange(n, dtype=profile.dtype, device=profile.device)
    centre = float((profile * positions).sum() / profile.sum())
    mirror = round(2 * centre)
    k = torch.arange(max(0, mirror - n + 1), min(n, mirror + 1), device=profile.device)
    if abs(mirror - 2 * centre) > 1e-2 or not torch.allclose(
        profile[k], profile[mirror - k], rtol=0.0, atol=_SYMMETRY_TOL * peak
    ):
        raise _GeometryError("the gradient is not symmetric about its centroid")
    return centre
