"""Fast inference for the engine: a frozen TorchScript graph, verified, else eager.

For a :class:`~harness.contracts.TorchModel` whose forward is the plain
``module(images)`` (neither ``_forward`` nor ``_logits`` overridden) and whose
module is in eval mode, the engine traces the module once per (weights,
input shape, dtype, device), freezes and optimises it
(``torch.jit.optimize_for_inference``: weights and batch norm become
constants, convolutions use MKL-DNN where that pays; measured on this CPU
with ResNet18 at 64 x 64: 1.86x eager at 1 thread, 2.6x at 2 threads, logits
equal to 1e-6) and checks the graph's logits against eager ones on two batch
sizes. When tracing fails or warns (a ``TracerWarning``: Python control flow
on tensor values, which a trace would freeze in one branch), or the logits
differ by more than ``RTOL``/``ATOL``, the model is marked eager for that key and nothing is
logged above DEBUG: the eager path is always correct, only slower.

A frozen graph bakes the weights in, so the cache is keyed by the weights
fingerprint of :mod:`harness.metrics._engine_cache`; any change of weights
(e.g. sanity-check randomisation) builds a new graph or falls back.
"""

from __future__ import annotations

import logging
import warnings
import weakref
from collections.abc import Callable, Hashable

import torch
from torch import Tensor, nn
from torch.jit._trace import TracerWarning

from harness.contracts import Model, TorchModel
from harness.metrics._engine_cache import weights_fingerprint

log = logging.getLogger(__name__)

RTOL = 1e-4
ATOL = 1e-4

Forward = Callable[[Tensor], Tensor]
_GRAPHS: weakref.WeakKeyDictionary[nn.Module, tuple[Hashable, dict[Hashable, Forward | None]]] = (
    weakref.WeakKeyDictionary()
)


def _plain_forward(model: Model) -> bool:
    if not isinstance(model, TorchModel):
        return False
    cls = type(model)
    return cls._logits is TorchModel._logits and cls._forward is TorchModel._forward


def plain_module(model: Model) -> nn.Module | None:
    """Return the module of a TorchModel whose logits are ``module(images)``, else None.

    Calling it directly on a chunk's images gives what ``model.logits`` would,
    without building a sub-batch for each chunk.
    """
    module = getattr(model, "module", None)
    return module if _plain_forward(model) and isinstance(module, nn.Module) else None


def _verified(graph: Forward, module: nn.Module, sample: Tensor) -> Forward:
    """Return ``graph`` if its logits equal the module's on ``sample`` and one row, else raise."""
    with torch.inference_mode():
        for rows in (sample, sample[:1]):
            expected = module(rows)
            got = graph(rows)
            if not isinstance(got, Tensor) or got.shape != expected.shape:
                raise ValueError("frozen graph output has a different shape")
            tol = ATOL * max(1.0, float(expected.abs().max()))
            if not torch.allclose(got, expected, rtol=RTOL, atol=tol):
                diff = float((got - expected).abs().max())
                raise ValueError(f"frozen graph logits differ by {diff:.3g}")
    return graph


def _build(module: nn.Module, example: Tensor) -> Forward | None:
    """Trace, freeze and verify ``module`` on ``example``; None when unusable.

    The inference-optimised graph is tried first, then the plain frozen one
    (some MKL-DNN kernels refuse shapes the eager ones accept, e.g. an
    adaptive pooling whose output size does not divide its input).
    """
    sample = example[: min(len(example), 4)].clone()
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # a trace records one path: data-dependent Python (``if x.max() > t``) would be frozen
        # in whichever branch the sample took, and verifying on the sample cannot see it
        warnings.simplefilter("error", TracerWarning)
        sample = sample.clone()
        try:
            traced = torch.jit.trace(module, sample, check_trace=False).eval()  # type: ignore[no-untyped-call]
        except Exception as exc:  # noqa: BLE001 - any tracing failure or warning means eager
            log.debug("tracing %s failed: %s", type(module).__name__, exc)
            return None
        for optimise in (torch.jit.optimize_for_inference, torch.jit.freeze):
            try:
                return _verified(optimise(traced), module, sample)
            except Exception as exc:  # noqa: BLE001 - an unusable graph means "next option"
                log.debug("%s unusable for %s: %s", optimise.__name__, type(module).__name__, exc)
    return None


def fast_forward(
    model: Model, example: Tensor, *, enabled: bool = True, build: bool = True
) -> Forward | None:
    """Return a verified frozen forward for ``model`` on inputs like ``example``, or None.

    None means "call ``model.logits`` on a batch" (the always-correct path).
    With ``build=False`` only an already built graph is returned: building
    costs seconds (about 5 s for ResNet18 on 2 CPU threads: trace, optimise,
    verify, warm up), so small requests do not start one.
    """
    if not enabled or not _plain_forward(model) or not example.is_floating_point():
        return None
    module = getattr(model, "module", None)
    if not isinstance(module, nn.Module) or any(m.training for m in module.modules()):
        return None
    stored = _GRAPHS.get(module)
    if stored is None and not build:
        return None  # nothing built for this module: skip fingerprinting its weights
    try:
        fingerprint = weights_fingerprint(module)
    except RuntimeError:  # inference-mode tensors keep no version counter: stay eager
        return None
    signature = (tuple(example.shape[1:]), example.dtype, example.device)
    if stored is None or stored[0] != fingerprint:
        stored = (fingerprint, {})
        _GRAPHS[module] = stored
    graphs = stored[1]
    if signature not in graphs:
        if not build:
            return None
        graphs[signature] = _build(module, example)
    return graphs[signature]
