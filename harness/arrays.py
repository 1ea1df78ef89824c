"""Score explanations given as arrays, Quantus-style: no plugins, no spec, no store.

For a user who has a trained ``nn.Module``, images, targets and attribution
maps (e.g. from a notebook that used Quantus) and wants the harness's batched
metrics on them::

    import harness
    scores = harness.score(
        "faithfulness.pixel_flipping", model, x_batch, y_batch, a_batch, pixels_per_step=16
    )
    scores.values  # one float64 score per row

Text models work the same way: ``x_batch`` holds integer token ids (N, L),
``a_batch`` token scores (N, L) and ``s_batch`` the target's rationale (N, L).
Image+text models (``module(images, tokens)``) take images as ``x_batch`` and
token ids as ``tokens``; ``a_batch`` / ``s_batch`` are then pixel maps and masks
or token scores and rationales, told apart by their shape.
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
    ExplainerTags,
    ExplanationMetric,
    Metric,
    Modality,
    Model,
    ModelTags,
    Need,
    Output,
    Scores,
    Task,
    TorchModel,
)
from harness.contracts.validation import finite_rows
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


class TokenModuleModel(ModuleModel):
    """A :class:`ModuleModel` whose module reads token ids (N, L)."""

    name: ClassVar[str] = "arrays.token_module"
    tags: ClassVar[ModelTags] = ModelTags(modalities=frozenset({Modality.TEXT}))

    def _forward(self, batch: Batch) -> Tensor:
        if batch.tokens is None:
            raise CapabilityError(f"model {self.name!r} needs token ids", plugin=self.name)
        out: Tensor = self.module(batch.tokens)
        return out


class ImageTextModuleModel(ModuleModel):
    """A :class:`ModuleModel` whose module reads images and token ids: ``module(images, tokens)``."""

    name: ClassVar[str] = "arrays.image_text_module"
    tags: ClassVar[ModelTags] = ModelTags(modalities=frozenset({Modality.IMAGE_TEXT}))

    def _forward(self, batch: Batch) -> Tensor:
        if batch.images is None or batch.tokens is None:
            raise CapabilityError(f"model {self.name!r} needs images and tokens", plugin=self.name)
        out: Tensor = self.module(batch.images, batch.tokens)
        return out


class FunctionExplainer(Explainer):
    """An :class:`Explainer` around ``fn(module, inputs, targets)`` (Quantus's ``explain_func``).

    ``fn`` gets the module, the inputs and the targets (N,) as tensors on the
    model's device: images (N, C, H, W), token ids (N, L), or the pair
    ``(images, tokens)`` for an image+text module. It returns one map per
    row, (N, H, W) or (N, 1, H, W) for images, (N, L) for tokens (with an
    image+text module: either, told apart by shape), as a tensor or an array.
    """

    name: ClassVar[str] = "arrays.explain_func"
    tags: ClassVar[ExplainerTags] = ExplainerTags(
        modalities=frozenset({Modality.IMAGE, Modality.TEXT, Modality.IMAGE_TEXT}),
        output=frozenset({Output.PIXEL, Output.TOKEN}),
    )

    def __init__(self, *, fn: ExplainFunc) -> None:
        self.fn = fn

    def _explain(self, model: Model, batch: Batch, targets: Tensor) -> Attribution:
        images, tokens = batch.images, batch.tokens
        if not isinstance(model, TorchModel) or (images is None and tokens is None):
            raise PluginError("explain_func needs a torch module and its inputs", plugin=self.name)
        inputs: Any = images if tokens is None else tokens if images is None else (images, tokens)
        out = _tensor("explain_func's result", self.fn(model.module, inputs, targets))
        device = (images if images is not None else tokens).device  # type: ignore[union-attr]
        return _attribution("explain_func's result", out, len(batch), images, tokens).to(device)


def _tensor(name: str, value: ArrayLike) -> Tensor:
    """Return ``value`` as a CPU tensor (the batch is built there; metrics move it to the model)."""
    if isinstance(value, Tensor):
        return value.detach().cpu()
    try:
        return torch.as_tensor(np.asarray(value))
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name}: expected an array or tensor of numbers ({exc})") from exc


def _per_row(name: str, value: ArrayLike, n: int, shape: tuple[int, ...]) -> Tensor:
    """Return (N, *shape) floats from (N, *shape) or (N, 1, *shape) input, or a DataError."""
    t = _tensor(name, value)
    if t.dim() == len(shape) + 2 and t.shape[1] == 1:
        t = t[:, 0]
    if tuple(t.shape) != (n, *shape):
        dims = ", ".join(map(str, shape))
        raise DataError(
            f"{name}: expected shape ({n}, {dims}) or ({n}, 1, {dims}) (one map per input), got "
            f"{tuple(t.shape)}" + ("; sum the channels first" if t.dim() == len(shape) + 2 else "")
        )
    return _float32_rows(name, t)


def _float32_rows(name: str, t: Tensor) -> Tensor:
    """Return ``t`` as float32, refusing non-finite rows and rows float32 cannot hold.

    The metrics compute in float32; a float64 map beyond its range would
    become inf, and one below its smallest normal number would become zeros
    (scored as "no attribution"), so both are named instead.
    """
    t = finite_rows(name, t)
    if t.dtype == torch.float64 and len(t):
        peak = t.abs().reshape(len(t), -1).amax(dim=1)
        info = torch.finfo(torch.float32)
        for bad, what in ((peak > info.max, "above"), ((peak > 0) & (peak < info.tiny), "below")):
            if bool(bad.any()):
                row = int(bad.nonzero()[0])
                raise DataError(
                    f"{name}: row {row} has values {what} float32's range (largest magnitude "
                    f"{float(peak[row]):.3g}) - expected magnitudes between {info.tiny:.3g} and "
                    f"{info.max:.3g}; rescale the maps"
                )
    return t.float()


def _is_tokens(value: Tensor, tokens: Tensor | None) -> bool:
    """Return whether per-row ``value`` holds one number per token (else one per pixel)."""
    return tokens is not None and tuple(value.shape) == tuple(tokens.shape)


def _attribution(
    name: str, value: ArrayLike, n: int, images: Tensor | None, tokens: Tensor | None
) -> Attribution:
    """Return token scores when ``value`` is shaped like the token ids, else pixel maps."""
    t = _tensor(name, value)
    if images is None or _is_tokens(t, tokens):
        assert tokens is not None
        return Attribution(tokens=_per_row(name, t, n, tuple(tokens.shape[1:])))
    return Attribution(pixels=_per_row(name, t, n, tuple(images.shape[2:])))


def _inputs(x_batch: ArrayLike, dtype: torch.dtype) -> Tensor:
    """Return images (N, C, H, W) in the model's ``dtype``, or token ids (N, L) as int64.

    NumPy's float64 images meet a float32 model (and the reverse) as in Quantus:
    the images take the model's floating dtype.
    """
    x = _tensor("x_batch", x_batch)
    if x.dim() == 2 and not x.is_floating_point() and x.dtype is not torch.bool:
        return x.long()
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if x.dim() != 4 or 0 in x.shape:
        raise DataError(
            f"x_batch: expected images (N, C, H, W) or (N, H, W), or integer token ids (N, L), "
            f"got shape {tuple(x.shape)} of {x.dtype}"
        )
    cast = finite_rows("x_batch", x).to(dtype)
    try:
        return finite_rows("x_batch", cast)
    except DataError as exc:
        raise DataError(f"{exc} after conversion to the model's {dtype}") from None


def _float_dtype(module: nn.Module) -> torch.dtype:
    """Return the dtype of the module's first floating parameter or buffer (float32 if none)."""
    for t in (*module.parameters(), *module.buffers()):
        if t.is_floating_point():
            return t.dtype
    return torch.float32


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


def _ground_truth(
    s_batch: ArrayLike | None,
    targets: Tensor,
    classes: int,
    images: Tensor | None,
    tokens: Tensor | None,
) -> tuple[Tensor | None, Tensor | None]:
    """Return (masks, rationales): the given ground truth in each row's target class.

    Masks are (N, K, H, W) bool, rationales (N, K, L); ``s_batch`` is read as
    rationales when it is shaped like the token ids or there are no images.
    """
    if s_batch is None:
        return None, None
    n = len(targets)
    truth = _attribution("s_batch", s_batch, n, images, tokens)
    given = truth.pixels if truth.pixels is not None else truth.tokens
    assert given is not None
    out = torch.zeros(n, classes, *given.shape[1:], dtype=torch.bool)
    out[torch.arange(n), targets] = given > 0
    return (out, None) if truth.pixels is not None else (None, out)


def _explainer(explain_func: ExplainFunc | str | Explainer | None) -> Explainer | None:
    if explain_func is None or isinstance(explain_func, Explainer):
        return explain_func
    if isinstance(explain_func, str):
        return get_explainer(explain_func)
    if callable(explain_func):
        return FunctionExplainer(fn=explain_func)
    raise PluginError(
        f"explain_func: expected a registered explainer name, an Explainer or a callable "
        f"fn(module, inputs, targets), got {type(explain_func).__name__}"
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
    Need.RATIONALES: "s_batch",
    Need.EXPLAINER: "explain_func",
    Need.LABEL_RANDOMISED_MODEL: "label_randomised_model",
}


def _require(metric: ExplanationMetric, given: dict[str, object]) -> None:
    """Name the missing argument when ``metric`` needs ground truth, an explainer or a twin."""
    for need, argument in _ARGUMENT_FOR.items():
        if need in metric.get_tags().needs and given[argument] is None:
            raise CapabilityError(
                f"metric {metric.name!r} needs {argument} ({need.value})", plugin=metric.name
            )


def _model(
    net: nn.Module, info: DatasetInfo, device: torch.device, cam_layer: str | None
) -> ModuleModel:
    kind = {Modality.TEXT: TokenModuleModel, Modality.IMAGE_TEXT: ImageTextModuleModel}.get(
        info.modality, ModuleModel
    )
    model = kind(net=net, cam_layer=cam_layer)
    model.build(info)
    model.to(device)
    return model


def _token_ids(tokens: ArrayLike | None, inputs: Tensor) -> Tensor | None:
    """Return the (N, L) int64 token ids paired with image ``inputs`` (None when not given)."""
    if tokens is None:
        return None
    t = _tensor("tokens", tokens)
    if inputs.dim() != 4:
        raise DataError("tokens: given with token ids in x_batch - expected images in x_batch")
    if t.dim() != 2 or len(t) != len(inputs) or t.is_floating_point() or t.dtype is torch.bool:
        raise DataError(
            f"tokens: expected integer token ids ({len(inputs)}, L), one row per image, got "
            f"shape {tuple(t.shape)} of {t.dtype}"
        )
    return t.long()


def _info(kind: Task, classes: int, images: Tensor | None, tokens: Tensor | None) -> DatasetInfo:
    """Describe the inputs as a dataset would: modality, image size, vocabulary, length."""
    modality = (
        Modality.TEXT
        if images is None
        else Modality.IMAGE
        if tokens is None
        else Modality.IMAGE_TEXT
    )
    names = tuple(str(k) for k in range(classes))
    return DatasetInfo(
        modality,
        kind,
        names,
        channels=1 if images is None else int(images.shape[1]),
        image_size=None if images is None else (int(images.shape[2]), int(images.shape[3])),
        vocab_size=None if tokens is None else int(tokens.max()) + 1,
        seq_len=None if tokens is None else int(tokens.shape[1]),
    )


def score(
    metric: str | ExplanationMetric,
    model: nn.Module,
    x_batch: ArrayLike,
    y_batch: ArrayLike,
    a_batch: ArrayLike,
    *,
    s_batch: ArrayLike | None = None,
    tokens: ArrayLike | None = None,
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
        The trained classifier, mapping (N, C, H, W) images (or (N, L) token ids, or both as
        ``model(images, tokens)``) to (N, K) logits. It is put in eval mode and moved to
        ``device`` (in place, as Quantus does).
    x_batch : array or tensor
        Images (N, C, H, W), or (N, H, W) for one channel, converted to the model's
        floating dtype (NumPy's float64 meets a float32 model); or integer token ids (N, L).
    y_batch : array or tensor
        The explained class (or label) index of each input, (N,).
    a_batch : array or tensor
        One attribution map per image, (N, H, W) or (N, 1, H, W); token scores (N, L)
        (with ``tokens``: read as token scores when shaped like ``tokens``).
    s_batch : array or tensor, optional
        Ground truth of the explained class, nonzero inside: masks (N, H, W) or
        (N, 1, H, W), or token rationales (N, L); needed by localisation metrics.
    tokens : array or tensor, optional
        Integer token ids (N, L) read with the images of ``x_batch`` by an image+text
        model, called as ``model(images, tokens)``.
    explain_func : str, Explainer or callable, optional
        How metrics that re-explain (sanity checks, robustness) explain: a registered
        explainer name, an Explainer, or ``fn(module, inputs, targets)`` returning one map
        per row (as ``a_batch``) for tensors on the model's device (``inputs`` is the pair
        ``(images, tokens)`` for an image+text model).
    task : {"multiclass", "multilabel"}, default="multiclass"
        How logits become probabilities (softmax or sigmoid).
    labels : array or tensor, optional
        Each input's labels: (N,) classes (default: ``y_batch``), or (N, K) states for a
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
    on = resolve_device(device, where="harness.score", key="device")
    inputs = _inputs(x_batch, _float_dtype(model))
    token_ids = _token_ids(tokens, inputs)
    images, token_ids = (None, inputs) if inputs.dim() == 2 else (inputs, token_ids)
    n = len(inputs)
    model.eval().to(on)
    with torch.inference_mode():
        probe = [t[:1].to(on) for t in (images, token_ids) if t is not None]
        classes = int(model(*probe).shape[-1])
    targets = _targets(y_batch, n, classes)
    names = tuple(str(i) for i in range(n)) if ids is None else tuple(str(i) for i in ids)
    if len(names) != n or len(set(names)) != n:
        raise DataError(
            f"ids: expected {n} distinct sample ids, got {len(names)} ({len(set(names))} distinct)"
        )
    info = _info(kind, classes, images, token_ids)
    wrapped = _model(model, info, on, cam_layer)
    if label_randomised_model is not None:
        wrapped.label_randomised = _model(label_randomised_model.eval(), info, on, cam_layer)
    masks, rationales = _ground_truth(s_batch, targets, classes, images, token_ids)
    batch = Batch(
        ids=names,
        labels=_labels(labels, kind, targets, classes),
        images=images,
        tokens=token_ids,
        masks=masks,
        rationales=rationales,
    )
    attribution = _attribution("a_batch", a_batch, n, images, token_ids)
    return scorer.evaluate(wrapped, batch, targets, attribution, explainer=_explainer(explain_func))
