"""Shared helpers of the classification metrics: label checks, known-entry masks, thresholds.

Multi-label labels use the CheXpert states 1 / 0 / -1 (uncertain) / -2 (missing).
The dataset maps -1 through its declared uncertainty policy before metrics see
the labels; a -1 that remains is treated like -2 (ignored) and logged.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import Tensor

from harness.contracts.tags import Task
from harness.errors import DataError

log = logging.getLogger(__name__)

MISSING = -2
UNCERTAIN = -1


def check_shapes(name: str, labels: Tensor, probs: Tensor, task: Task) -> None:
    """Raise DataError unless ``labels`` and ``probs`` fit ``task``.

    Parameters
    ----------
    name : str
        The metric's registered name, used in the message.
    labels : Tensor
        (N,) class indices for multi-class, (N, K) label states for multi-label.
    probs : Tensor
        (N, K) probabilities.
    task : Task
        The prediction task.
    """
    if probs.dim() != 2 or probs.shape[0] != labels.shape[0]:
        raise DataError(
            f"metric {name!r}: probabilities of shape {tuple(probs.shape)} for labels "
            f"{tuple(labels.shape)} - expected (N, K) with N = {labels.shape[0]}."
        )
    if task is Task.MULTILABEL and tuple(labels.shape) != tuple(probs.shape):
        raise DataError(
            f"metric {name!r}: multi-label labels of shape {tuple(labels.shape)} - "
            f"expected {tuple(probs.shape)} (one state per label)."
        )
    if task is Task.MULTICLASS:
        if labels.dim() != 1:
            raise DataError(
                f"metric {name!r}: multi-class labels of shape {tuple(labels.shape)} - "
                "expected (N,) class indices."
            )
        k = probs.shape[1]
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= k):
            raise DataError(
                f"metric {name!r}: class labels out of range - expected 0..{k - 1}, got "
                f"{int(labels.min())}..{int(labels.max())}."
            )


def known_mask(name: str, labels: Tensor) -> Tensor:
    """Return the bool mask of multi-label entries that are 0 or 1.

    -2 (missing) is ignored, as in the masked metrics of the MIMIC-CXR paper;
    a remaining -1 (uncertain) is ignored too, and logged, because the dataset's
    uncertainty policy should already have mapped it.
    """
    uncertain = int((labels == UNCERTAIN).sum())
    if uncertain:
        log.info(
            "metric %r: %d uncertain (-1) label(s) left after the dataset's policy; ignored",
            name,
            uncertain,
        )
    bad = ~((labels == 0) | (labels == 1) | (labels == UNCERTAIN) | (labels == MISSING))
    if bool(bad.any()):
        raise DataError(
            f"metric {name!r}: multi-label states must be 1, 0, -1 or -2 - got "
            f"{sorted({f'{v:g}' for v in labels[bad].tolist()})}."
        )
    return (labels == 0) | (labels == 1)


def require_known(name: str, labels: Tensor) -> Tensor:
    """Return :func:`known_mask` of ``labels``; raise DataError when no entry is known."""
    known = known_mask(name, labels)
    if not bool(known.any()):
        raise DataError(f"metric {name!r}: no known (0/1) labels - expected at least one.")
    return known


def hard_predictions(probs: Tensor, task: Task, threshold: float) -> Tensor:
    """Return argmax classes (multi-class) or ``probs > threshold`` as 0/1 (multi-label)."""
    if task is Task.MULTILABEL:
        return (probs > threshold).long()
    return probs.argmax(dim=1)


def per_label_columns(
    name: str, labels: Tensor, values: Tensor
) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Return (label index, known labels, values on known rows) for each label column."""
    known = known_mask(name, labels)
    out = []
    for j in range(labels.shape[1]):
        rows = known[:, j]
        out.append((j, labels[rows, j].numpy(), values[rows, j].numpy()))
    return out


def as_numpy(x: Tensor) -> np.ndarray:
    """Return ``x`` as a NumPy array (CPU, float64 for floating tensors)."""
    if x.is_floating_point():
        return x.to(torch.float64).numpy()
    return x.numpy()
