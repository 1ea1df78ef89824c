"""Score explanations given as arrays, Quantus-style: no plugins, no spec, no store.

For a user who has a trained ``nn.Module``, images, targets and attribution
maps (e.g. from a notebook that used Quantus) and wants the harness's batched
metrics on them::

    import harness
    scores = harness.score(
        "faithfulness.pixel_flipping", model, x_batch, y_batch, a_batch, pixels_per_step=16
    )
    scores.values  # one float64 score per row

The arrays are wrapped in the same contracts a benchmark run uses (a
:class:`~harness.contracts.TorchModel` around the module, a
:class:`~harness.contracts.Batch`, an :class:`~harness.contracts.Attribution`),
so the values are those of a leaderboard cell on the same inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from harness.api import get_explainer, get_metric
from harness.contracts import (
    Attribution,
    Batch,
    DatasetInfo,
    Explainer,
    ExplanationMetric,
    Metric,
    Modality,
    Model,
    Need,
    Scores,
    Task,
    TorchModel,
)
from harness.device import resolve_device
from harness.errors import CapabilityError, DataError, PluginError

ArrayLike = Any  # numpy array, torch tensor, or nested sequences of numbers
ExplainFunc = Callable[[nn.Module, Tensor, Tensor], Any]


class ModuleModel(TorchModel):
    """A :class:`TorchModel` around a given, already trained ``nn.Module`` (never fitted here)."""

    name: ClassVar[str] = "arrays.module"

    def __init__(self, *, net: nn.Module, cam_layer: str | None = None) -> None:
        self.net = net
        self.cam_layer = cam_layer

    def _build_module(self, info: DatasetInfo) -> nn.Module:
        return self.net

    def target_layer(self) -> nn.Module:
        """Return the ``cam_layer`` the caller named (a bare module declares none)."""
        if not self.cam_layer:
            raise CapabilityError(
                "CAM explainers need the layer to explain: pass cam_layer (a dotted module "
                "name such as 'layer4') to harness.score",
                plugin=self.name,
            )
        return super().target_layer()


class FunctionExplainer(Explainer):
    """An :class:`Explainer` around ``fn(module, images, targets)`` (Quantus's ``explain_func``).

    ``fn`` gets the module, the images (N, C, H, W) and the targets (N,) as
    tensors on the model's device, and returns one map per row, (N, H, W) or
    (N, 1, H, W), as a tensor or an array.
    """

    name: ClassVar[str] = "arrays.explain_func"

    def __init__(self, *, fn: ExplainFunc) -> None:
        self.fn = fn

    def _explain(self, model: Model, batch: Batch, targets: Tensor) -> Attribution:
        if not isinstance(model, TorchModel) or batch.images is None:
            raise PluginError("explain_func needs a torch module and images", plugin=self.name)
        out = self.fn(model.module, batch.images, targets)
        n, _, h, w = batch.images.shape
        pixels = _maps("explain_func's result", out, n, (h, w)).to(batch.images.device)
        return Attribution(pixels=pixels)


def _tensor(name: str, value: ArrayLike) -> Tensor:
    if isinstance(value, Tensor):
        return value.detach()
    try:
        return torch.as_tensor(np.asarray(value))
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name}: expected an array or tensor of numbers ({exc})") from exc


def _maps(name: str, value: ArrayLike, n: int, size: tuple[int, int]) -> Tensor:
    """Return (N, H, W) float maps from (N, H, W) or (N, 1, H, W) input, or a DataError."""
    t = _tensor(name, value)
    if t.dim() == 4 and t.shape[1] == 1:
        t = t[:, 0]
    if t.dim() != 3 or tuple(t.shape) != (n, *size):
        raise DataError(
            f"{name}: expected shape ({n}, {size[0]}, {size[1]}) or ({n}, 1, {size[0]}, "
            f"{size[1]}) (one map per image), got {tuple(t.shape)}"
            + ("; sum the channels first" if t.dim() == 4 else "")
        )
    return t.float()


def _images(x_batch: ArrayLike) -> Tensor:
    x = _tensor("x_batch", x_batch)
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if x.dim() != 4 or 0 in x.shape:
        raise DataError(f"x_batch: expected shape (N, C, H, W) or (N, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        x = x.float()
    return x


def _targets(y_batch: ArrayLike, n: int, classes: int) -> Tensor:
    y = _tensor("y_batch", y_batch)
    if y.dim() != 1 or len(y) != n or y.is_floating_point() and bool((y != y.round()).any()):
        raise DataError(
            f"y_batch: expected {n} integer class indices (one per image), got shape "
            f"{tuple(y.shape)} of {y.dtype}"
        )
    y = y.long()
    bad = ((y < 0) | (y >= classes)).nonzero().flatten()
    if len(bad):
        row = int(bad[0])
        raise DataError(
            f"y_batch: row {row} has target {int(y[row])}, outside the model's {classes} outputs"
        )
    return y


def _labels(labels: ArrayLike | None, task: Task, targets: Tensor, classes: int) -> Tensor:
    if labels is None:
        if task is Task.MULTILABEL:
            raise DataError(
                "labels: a multi-label task needs the (N, K) label states (1 positive, "
                "0 negative, -1 uncertain, -2 not mentioned)"
            )
        return targets.clone()
    out = _tensor("labels", labels).long()
    expected = (len(targets), classes) if task is Task.MULTILABEL else (len(targets),)
    if tuple(out.shape) != expected:
        raise DataError(f"labels: expected shape {expected}, got {tuple(out.shape)}")
    return out


def _masks(
    s_batch: ArrayLike | None, targets: Tensor, classes: int, size: tuple[int, int]
) -> Tensor | None:
    if s_batch is None:
        return None
    n = len(targets)
    s = _maps("s_batch", s_batch, n, size)
    masks = torch.zeros(n, classes, *size, dtype=torch.bool)
    masks[torch.arange(n), targets] = s > 0
    return masks


def _explainer(explain_func: ExplainFunc | str | Explainer | None) -> Explainer | None:
    if explain_func is None or isinstance(explain_func, Explainer):
        return explain_func
    if isinstance(explain_func, str):
        return get_explainer(explain_func)
    if callable(explain_func):
        return FunctionExplainer(fn=explain_func)
    raise PluginError(
        f"explain_func: expected a registered explainer name, an Explainer or a callable "
        f"fn(module, images, targets), got {type(explain_func).__name__}"
    )


def _metric(metric: str | Metric, params: dict[str, Any]) -> ExplanationMetric:
    if isinstance(metric, str):
        metric = get_metric(metric, **params)
    elif params:
        raise PluginError(
            f"metric parameters {sorted(params)} given with a metric instance: build it with them"
        )
    if not isinstance(metric, ExplanationMetric):
        raise PluginError(f"metric {metric.name!r} does not score explanations", plugin=metric.name)
    return metric


_ARGUMENT_FOR = {
    Need.MASKS: "s_batch",
    Need.EXPLAINER: "explain_func",
    Need.LABEL_RANDOMISED_MODEL: "label_randomised_model",
}


def _require(metric: ExplanationMetric, given: dict[str, object]) -> None:
    """Name the missing argument when ``metric`` needs masks, an explainer or a twin model."""
    for need, argument in _ARGUMENT_FOR.items():
        if need in metric.get_tags().needs and given[argument] is None:
            raise CapabilityError(
                f"metric {metric.name!r} needs {argument} ({need.value})", plugin=metric.name
            )


def _model(
    net: nn.Module, info: DatasetInfo, device: torch.device, cam_layer: str | None
) -> ModuleModel:
    model = ModuleModel(net=net, cam_layer=cam_layer)
    model.build(info)
    model.to(device)
    return model


def score(
    metric: str | ExplanationMetric,
    model: nn.Module,
    x_batch: ArrayLike,
    y_batch: ArrayLike,
    a_batch: ArrayLike,
    *,
    s_batch: ArrayLike | None = None,
    explain_func: ExplainFunc | str | Explainer | None = None,
    task: str = "multiclass",
    labels: ArrayLike | None = None,
    ids: Sequence[str] | None = None,
    label_randomised_model: nn.Module | None = None,
    cam_layer: str | None = None,
    device: str = "auto",
    **params: Any,
) -> Scores:
    """Score attributions ``a_batch`` of ``model`` on ``x_batch`` with one explanation metric.

    Parameters
    ----------
    metric : str or ExplanationMetric
        A registered metric name (``harness ls metrics``), built with ``params``, or an instance.
    model : nn.Module
        The trained classifier, mapping (N, C, H, W) images to (N, K) logits. It is put in
        eval mode and moved to ``device`` (in place, as Quantus does).
    x_batch : array or tensor
        Images (N, C, H, W), or (N, H, W) for one channel.
    y_batch : array or tensor
        The explained class (or label) index of each image, (N,).
    a_batch : array or tensor
        One attribution map per image, (N, H, W) or (N, 1, H, W).
    s_batch : array or tensor, optional
        Ground-truth masks of the explained class, (N, H, W) or (N, 1, H, W), nonzero
        inside; needed by localisation metrics.
    explain_func : str, Explainer or callable, optional
        How metrics that re-explain (sanity checks, robustness) explain: a registered
        explainer name, an Explainer, or ``fn(module, images, targets)`` returning
        (N, H, W) or (N, 1, H, W) maps for tensors on the model's device.
    task : {"multiclass", "multilabel"}, default="multiclass"
        How logits become probabilities (softmax or sigmoid).
    labels : array or tensor, optional
        Each image's labels: (N,) classes (default: ``y_batch``), or (N, K) states for a
        multi-label task (1 positive, 0 negative, -1 uncertain, -2 not mentioned; required).
    ids : sequence of str, optional
        Sample ids; each row's random draws are keyed by its id (default "0", "1", ...).
    label_randomised_model : nn.Module, optional
        The same architecture trained on permuted labels (``sanity.data_randomisation``).
    cam_layer : str, optional
        Dotted name of the layer CAM explainers use (e.g. ``"layer4"``).
    device : str, default="auto"
        ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda[:i]"``.
    **params
        The metric's parameters (``harness describe METRIC`` lists them).

    Returns
    -------
    Scores
        ``values``: one float64 score per row (CPU tensor); ``curves`` and ``notes`` as the
        metric returns them.
    """
    scorer = _metric(metric, params)
    _require(
        scorer,
        {
            "s_batch": s_batch,
            "explain_func": explain_func,
            "label_randomised_model": label_randomised_model,
        },
    )
    kind = {"multiclass": Task.MULTICLASS, "multilabel": Task.MULTILABEL}.get(task)
    if kind is None:
        raise DataError(f"task: expected 'multiclass' or 'multilabel', got {task!r}")
    on = resolve_device(device)
    images = _images(x_batch)
    n, channels, h, w = images.shape
    model.eval().to(on)
    with torch.inference_mode():
        classes = int(model(images[:1].to(on)).shape[-1])
    targets = _targets(y_batch, n, classes)
    names = tuple(str(i) for i in range(n)) if ids is None else tuple(str(i) for i in ids)
    if len(names) != n or len(set(names)) != n:
        raise DataError(
            f"ids: expected {n} distinct sample ids, got {len(names)} ({len(set(names))} distinct)"
        )
    info = DatasetInfo(
        Modality.IMAGE,
        kind,
        tuple(str(k) for k in range(classes)),
        channels=channels,
        image_size=(h, w),
    )
    wrapped = _model(model, info, on, cam_layer)
    if label_randomised_model is not None:
        wrapped.label_randomised = _model(label_randomised_model.eval(), info, on, cam_layer)
    batch = Batch(
        ids=names,
        labels=_labels(labels, kind, targets, classes),
        images=images,
        masks=_masks(s_batch, targets, classes, (h, w)),
    )
    attribution = Attribution(pixels=_maps("a_batch", a_batch, n, (h, w)))
    return scorer.evaluate(wrapped, batch, targets, attribution, explainer=_explainer(explain_func))
