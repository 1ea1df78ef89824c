"""Checks at plugin boundaries: bad plugin output becomes a ContractViolation."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NoReturn

import numpy as np
import torch
from torch import Tensor

from harness.contracts.data import Attribution, Batch
from harness.contracts.tags import Need, Task
from harness.errors import CapabilityError, ContractViolation, DataError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from harness.contracts.component import Component
    from harness.contracts.data import Sample
    from harness.contracts.dataset import Dataset
    from harness.contracts.explainer import Explainer
    from harness.contracts.metric import ExplanationMetric
    from harness.contracts.model import Model


def _who(kind: str, plugin: Component) -> str:
    """Name a plugin with the distribution that registered it (or that holds its module)."""
    from harness.plugin_manager import registered_distribution
    from harness.registry import distribution_of

    dist = registered_distribution(f"{kind}s", plugin.name) or distribution_of(type(plugin))  # type: ignore[arg-type]
    return f"{kind} {plugin.name!r}" + (f" ({dist})" if dist else "")


def _all_finite(values: Tensor) -> bool:
    """Whether every value is finite: a float64 sum first (NaN and inf reach it; 10x cheaper).

    CPU sums run in NumPy, in the calling thread: a 2-thread torch reduction leaves
    an OpenMP worker spinning on the other core for a while, which slowed the
    metrics' own NumPy threads that follow (``harness.metrics._sorting``).
    """
    values = values.detach()
    if values.device.type == "cpu" and values.dtype in (torch.float32, torch.float64):
        total = float(np.sum(values.numpy(), dtype=np.float64))
    else:
        total = float(values.sum(dtype=torch.float64))
    return math.isfinite(total) or bool(values.isfinite().all())


def _finite(values: Tensor, what: str, kind: str, plugin: Component) -> None:
    if values.is_floating_point() and not _all_finite(values):
        values = values.detach()
        bad = int((~torch.isfinite(values)).sum())
        rows = ""
        if values.dim() > 0:
            hit = (~torch.isfinite(values.reshape(len(values), -1))).any(dim=1).nonzero()
            shown = ", ".join(str(int(r)) for r in hit[:5, 0])
            more = f" and {len(hit) - 5} more" if len(hit) > 5 else ""
            rows = f" (row(s) {shown}{more} of {len(values)})"
        raise ContractViolation(
            f"{_who(kind, plugin)} returned {bad} non-finite value(s) (NaN or inf) in "
            f"{what}{rows}; expected finite numbers",
            plugin=plugin.name,
        )


def finite_rows(name: str, values: Tensor) -> Tensor:
    """Return ``values`` (rows first), or raise a DataError naming the first row with NaN or inf."""
    if not values.is_floating_point() or values.dim() == 0 or _all_finite(values):
        return values
    bad = ~torch.isfinite(values.reshape(len(values), -1)).all(dim=1)
    if bool(bad.any()):
        row = int(bad.nonzero()[0])
        raise DataError(
            f"{name}: row {row} has non-finite values (NaN or inf) - expected finite numbers "
            f"({int(bad.sum())} of {len(values)} rows affected)"
        )
    return values


def check_attribution(out: object, batch: Batch, *, explainer: Explainer) -> Attribution:
    """Validate an explainer's output against the batch; channel dims are summed away."""
    if not isinstance(out, Attribution):
        raise ContractViolation(
            f"{_who('explainer', explainer)} returned {type(out).__name__}; expected harness.Attribution",
            plugin=explainer.name,
        )
    if out.pixels is None and out.tokens is None and out.sentences is None:
        raise ContractViolation(
            f"{_who('explainer', explainer)} returned an empty Attribution", plugin=explainer.name
        )
    for what, value in (("pixel", out.pixels), ("token", out.tokens)):
        if value is not None and not isinstance(value, Tensor):
            raise ContractViolation(
                f"{_who('explainer', explainer)} returned {what} attributions of type "
                f"{type(value).__name__}; expected a torch.Tensor",
                plugin=explainer.name,
            )
    n = len(batch)
    pixels = out.pixels
    if pixels is not None:
        if batch.images is None:
            raise ContractViolation(
                f"{_who('explainer', explainer)} returned pixel attributions for a batch without images",
                plugin=explainer.name,
            )
        _, c, h, w = batch.images.shape
        if pixels.dim() == 4 and tuple(pixels.shape) == (n, c, h, w):
            pixels = pixels.sum(dim=1)
        if tuple(pixels.shape) != (n, h, w):
            raise ContractViolation(
                f"{_who('explainer', explainer)} returned attributions of shape {tuple(out.pixels.shape)} for inputs "  # type: ignore[union-attr]
                f"{tuple(batch.images.shape)}; expected {(n, c, h, w)} or {(n, h, w)}",
                plugin=explainer.name,
            )
        _finite(pixels, "pixel attributions", "explainer", explainer)
    tokens = out.tokens
    if tokens is not None:
        if batch.tokens is None or tuple(tokens.shape) != tuple(batch.tokens.shape):
            expected = None if batch.tokens is None else tuple(batch.tokens.shape)
            raise ContractViolation(
                f"{_who('explainer', explainer)} returned token attributions of shape {tuple(tokens.shape)}; expected {expected}",
                plugin=explainer.name,
            )
        _finite(tokens, "token attributions", "explainer", explainer)
    if out.sentences is not None and len(out.sentences) != n:
        raise ContractViolation(
            f"{_who('explainer', explainer)} returned {len(out.sentences)} sentences for {n} rows",
            plugin=explainer.name,
        )
    return Attribution(
        pixels=None if pixels is None else pixels.detach().float(),
        tokens=None if tokens is None else tokens.detach().float(),
        sentences=out.sentences,
    )


def check_logits(out: object, n: int, *, model: Model) -> Tensor:
    """Validate a model's raw scores: a finite (N, K) float tensor.

    Parameters
    ----------
    out : object
        What the model returned.
    n : int
        The number of rows it was given.
    model : Model
        The model; when its ``expected_outputs`` is set (the runner sets it after
        ``build``), K must equal it.

    Returns
    -------
    Tensor
        ``out`` unchanged.

    Raises
    ------
    ContractViolation
        When ``out`` is not an (N, K) tensor or holds NaN or inf.
    """
    k = model.expected_outputs
    if (
        not isinstance(out, Tensor)
        or out.dim() != 2
        or out.shape[0] != n
        or (k is not None and out.shape[1] != k)
    ):
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        expected = (
            f"({n}, K)"
            if k is None
            else f"({n}, {k}) - one column per class or label of the dataset"
        )
        raise ContractViolation(
            f"{_who('model', model)} returned logits {shape}; expected {expected}",
            plugin=model.name,
        )
    _finite(out.detach(), "logits", "model", model)
    return out


def check_labels(batch: Batch, task: Task, classes: int | None, *, dataset: Dataset) -> None:
    """Raise a DataError naming a sample whose label the model cannot be trained on.

    Multi-class labels are class indices in ``[0, classes)``; multi-label entries
    are CheXpert states 1, 0, -1 (uncertain) or -2 (missing). ``classes`` None
    (the model's width is not known yet) checks only the multi-label states.
    """
    labels = batch.labels
    if task is Task.MULTILABEL:
        bad = ~((labels >= -2) & (labels <= 1))
        bad = bad.reshape(len(labels), -1).any(dim=1)
        expected = "CheXpert states 1, 0, -1 or -2"
    elif classes is not None:
        bad = (labels < 0) | (labels >= classes)
        expected = f"a class index in [0, {classes})"
    else:
        return
    if bool(bad.any()):
        row = int(bad.nonzero()[0])
        raise DataError(
            f"dataset {dataset.name!r}: sample {batch.ids[row]!r} has label "
            f"{labels[row].tolist()} - expected {expected}"
        )


def check_samples(samples: Sequence[Sample], ids: Sequence[str], *, dataset: Dataset) -> None:
    """Check that ``samples`` answer ``ids`` and can be stacked into one batch.

    Every sample has a label; every tensor field (image, tokens, mask,
    rationale, label) present in a sample must be a tensor of the shape of
    the batch's first sample that has it (one comparison per field and sample).

    Parameters
    ----------
    samples : Sequence[Sample]
        What the dataset's ``_get`` returned, in the order of ``ids``.
    ids : Sequence[str]
        The ids asked for.
    dataset : Dataset
        The dataset, named in the messages.

    Raises
    ------
    ContractViolation
        When a sample carries another id than the one asked for.
    DataError
        When a label is missing, a field is not a tensor, or its shape differs
        from the first sample's that has it.
    """
    for s, i in zip(samples, ids, strict=True):
        if s.id != i:
            raise ContractViolation(
                f"dataset {dataset.name!r} returned sample {s.id!r} for id {i!r}",
                plugin=dataset.name,
            )
    for name in _SAMPLE_TENSORS:
        present = [s for s in samples if getattr(s, name) is not None]
        if name == "label" and len(present) < len(samples):
            missing = next(s for s in samples if s.label is None)
            _bad_sample(dataset, missing.id, name, "None", "a torch.Tensor (every sample has one)")
        if not present:
            continue
        first = present[0]  # the reference: the first sample that has the field
        expected = getattr(first, name).shape if isinstance(getattr(first, name), Tensor) else None
        for s in present:
            value = getattr(s, name)
            if not isinstance(value, Tensor):
                _bad_sample(dataset, s.id, name, f"type {type(value).__name__}", "a torch.Tensor")
            if value.shape != expected:
                _bad_sample(
                    dataset,
                    s.id,
                    name,
                    f"shape {tuple(value.shape)}",
                    f"shape {tuple(expected or ())} (that of sample {first.id!r}, the batch's first with a {name})",
                )


def load_error(dataset: Dataset, sample_id: str, exc: Exception) -> DataError:
    """Return the DataError for ``exc`` raised by ``dataset._get(sample_id)`` (chain it with ``from``)."""
    return DataError(
        f"{_who('dataset', dataset)}: sample {sample_id!r} - expected it to load, "
        f"got {type(exc).__name__}: {exc}"
    )


_SAMPLE_TENSORS = ("image", "tokens", "mask", "rationale", "label")


def _bad_sample(dataset: Dataset, sample_id: str, field: str, got: str, expected: str) -> NoReturn:
    """Raise the DataError of a sample whose ``field`` cannot be stacked with the others."""
    raise DataError(
        f"{_who('dataset', dataset)}: sample {sample_id!r}: {field} - expected {expected}, got {got}."
    )


def check_scores(out: Tensor, n: int, *, metric: ExplanationMetric) -> Tensor:
    """Validate a metric's per-row scores: a finite (N,) tensor."""
    if tuple(out.shape) != (n,):
        raise ContractViolation(
            f"{_who('metric', metric)} returned scores of shape {tuple(out.shape)}; expected ({n},)",
            plugin=metric.name,
        )
    _finite(out.detach().double(), "scores", "metric", metric)
    return out.detach().double().cpu()


def require_explainer_needs(explainer: Explainer, model: Model) -> None:
    """Raise CapabilityError when ``model`` lacks what ``explainer`` needs."""
    needs = explainer.get_tags().needs
    tags = model.get_tags()
    if Need.GRADIENTS in needs and not tags.differentiable:
        raise CapabilityError(
            f"explainer {explainer.name!r} needs gradients; model {model.name!r} is black-box",
            plugin=explainer.name,
        )
    if Need.TARGET_LAYER in needs and not hasattr(model, "target_layer"):
        raise CapabilityError(
            f"explainer {explainer.name!r} needs a target layer; model {model.name!r} has none",
            plugin=explainer.name,
        )


def require_metric_needs(
    metric: ExplanationMetric,
    model: Model,
    batch: Batch,
    attribution: Attribution,
    explainer: Explainer | None,
) -> None:
    """Raise CapabilityError when the inputs lack what ``metric`` needs (DataError: non-finite maps)."""
    needs = metric.get_tags().needs
    missing = []
    if Need.REFERENCES in needs and batch.references is None:
        missing.append("reference sentences")
    if Need.SENTENCES in needs and attribution.sentences is None:
        missing.append("generated sentences")
    if Need.LABEL_RANDOMISED_MODEL in needs and model.label_randomised is None:
        missing.append("a model trained on permuted labels (model.label_randomised)")
    if Need.MASKS in needs and batch.masks is None:
        missing.append("ground-truth masks")
    if Need.RATIONALES in needs and batch.rationales is None:
        missing.append("token rationales")
    if Need.PIXEL_ATTRIBUTIONS in needs and attribution.pixels is None:
        missing.append("pixel attributions")
    if Need.TOKEN_ATTRIBUTIONS in needs and attribution.tokens is None:
        missing.append("token attributions")
    if Need.EXPLAINER in needs and explainer is None:
        missing.append("an explainer to re-run")
    if missing:
        raise CapabilityError(
            f"metric {metric.name!r} needs {', '.join(missing)}", plugin=metric.name
        )
    for kind, values in (("pixel", attribution.pixels), ("token", attribution.tokens)):
        if values is not None:
            finite_rows(f"metric {metric.name!r}: {kind} attributions", values)
