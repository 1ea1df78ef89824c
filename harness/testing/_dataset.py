"""Dataset checks: info, splits and the shapes and dtypes ``load`` returns (``data.py``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from harness.contracts import SPLITS, Batch, Dataset, DatasetInfo, Modality, Provides, Task
from harness.testing._common import Check, fail, shape

_IMAGE = (Modality.IMAGE, Modality.IMAGE_TEXT)
_TEXT = (Modality.TEXT, Modality.IMAGE_TEXT)
_STATES = torch.tensor([1, 0, -1, -2])


def sample_ids(dataset: Dataset, per_split: int = 2) -> list[str]:
    """Return up to ``per_split`` ids from each split, train first."""
    splits = dataset.splits()
    return [i for name in SPLITS for i in list(splits.get(name, ()))[:per_split]]


def check_dataset_info(dataset: Dataset) -> None:
    """``info()`` agrees with the tags and describes inputs the models can build on."""
    name = "check_dataset_info"
    info = dataset.clone().info()
    if not isinstance(info, DatasetInfo):
        fail(dataset, name, "info()", "a harness.DatasetInfo", type(info).__name__)
    tags = type(dataset).tags
    if (info.modality, info.task) != (tags.modality, tags.task):
        fail(
            dataset,
            name,
            "info() modality / task",
            (tags.modality.value, tags.task.value),
            (info.modality.value, info.task.value),
        )
    if not info.provides <= tags.provides:
        fail(
            dataset,
            name,
            "info().provides",
            f"a subset of tags.provides {set(tags.provides)}",
            set(info.provides),
        )
    names = info.class_names
    least = 2 if info.task is Task.MULTICLASS else 1
    if (
        len(names) < least
        or len(set(names)) != len(names)
        or not all(isinstance(n, str) and n for n in names)
    ):
        fail(
            dataset,
            name,
            "info().class_names",
            f"at least {least} distinct non-empty strings",
            names,
        )
    if info.modality in _IMAGE and (not isinstance(info.channels, int) or info.channels < 1):
        fail(dataset, name, "info().channels", "a positive int", info.channels)
    if info.modality in _TEXT and not (isinstance(info.vocab_size, int) and info.vocab_size > 1):
        fail(
            dataset,
            name,
            "info().vocab_size (models size their embeddings with it)",
            "an int > 1",
            info.vocab_size,
        )


def check_dataset_splits(dataset: Dataset) -> None:
    """Check that train / val / test hold unique, disjoint string ids (train and test non-empty)."""
    name = "check_dataset_splits"
    splits = dataset.clone().splits()
    if set(splits) != set(SPLITS):
        fail(dataset, name, "split names", list(SPLITS), sorted(splits))
    seen: dict[str, str] = {}
    for split in SPLITS:
        ids = splits[split]
        if isinstance(ids, str) or not isinstance(ids, Sequence):
            fail(dataset, name, f"split {split!r}", "a sequence of string ids", type(ids).__name__)
        if split != "val" and not ids:
            fail(dataset, name, f"split {split!r}", "at least one id", "an empty split")
        for i in ids:
            if not isinstance(i, str):
                fail(dataset, name, f"an id in split {split!r}", "a string", repr(i))
            if i in seen:
                fail(
                    dataset,
                    name,
                    f"id {i!r}",
                    "ids unique within and across splits",
                    f"it in {seen[i]!r} and {split!r}",
                )
            seen[i] = split


_SPLITS_ELSEWHERE = """
import importlib, json, sys
target = importlib.import_module(sys.argv[1])
for part in sys.argv[2].split("."):
    target = getattr(target, part)
dataset = target(**json.loads(sys.argv[3]))
print(json.dumps({k: list(v) for k, v in dataset.splits().items()}))
"""


def _splits_in_another_process(dataset: Dataset) -> dict[str, list[str]] | None:
    """Return the splits an equal instance gives in a fresh Python with another hash seed.

    None when the class cannot be rebuilt there (defined in ``__main__`` or a
    function, parameters that are not JSON, or the import fails): nothing to compare.
    """
    cls = type(dataset)
    if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        return None
    try:
        params = json.dumps(dataset.get_params())
    except (TypeError, ValueError):
        return None
    seed = "1" if os.environ.get("PYTHONHASHSEED") == "0" else "0"
    env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": os.pathsep.join(sys.path)}
    try:
        done = subprocess.run(
            [sys.executable, "-c", _SPLITS_ELSEWHERE, cls.__module__, cls.__qualname__, params],
            capture_output=True, text=True, env=env, timeout=300, check=True,
        )  # fmt: skip
        out: dict[str, list[str]] = json.loads(done.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None
    return out


def check_dataset_splits_deterministic(dataset: Dataset) -> None:
    """Equal instances return the same splits, here and in a fresh process.

    The fresh process has another string-hash seed, so splits that depend on
    ``hash()`` of a string or on the order of a ``set`` (which change with
    ``PYTHONHASHSEED`` from one run to the next) are caught.
    """
    a = {k: list(v) for k, v in dataset.clone().splits().items()}
    b = {k: list(v) for k, v in dataset.clone().splits().items()}
    elsewhere = _splits_in_another_process(dataset) if a == b else None
    if a != b or (elsewhere is not None and elsewhere != a):
        fail(
            dataset,
            "check_dataset_splits_deterministic",
            "splits of two equal instances" if a != b else "splits in a fresh Python process",
            "identical ids in the same order (no hash() of strings, no set order: both change "
            "with PYTHONHASHSEED)",
            "different ids",
        )


def _check_labels(dataset: Dataset, batch: Batch, info: DatasetInfo, n: int) -> None:
    name, labels, k = "check_dataset_load", batch.labels, info.num_outputs
    if info.task is Task.MULTICLASS:
        if labels.dtype != torch.int64 or shape(labels) != (n,):
            fail(
                dataset,
                name,
                "multi-class labels",
                f"int64 ({n},)",
                f"{labels.dtype} {shape(labels)}",
            )
        if n and not bool(((labels >= 0) & (labels < k)).all()):
            fail(dataset, name, "multi-class labels", f"class indices in [0, {k})", labels.tolist())
    else:
        if labels.dtype != torch.int64 or shape(labels) != (n, k):
            fail(
                dataset,
                name,
                "multi-label labels",
                f"int64 ({n}, {k})",
                f"{labels.dtype} {shape(labels)}",
            )
        if not bool(torch.isin(labels, _STATES).all()):
            fail(
                dataset,
                name,
                "multi-label labels",
                "CheXpert states 1 / 0 / -1 / -2",
                sorted(set(labels.flatten().tolist())),
            )


def _check_field(
    dataset: Dataset, what: str, value: Any, dtype: torch.dtype, expected: tuple[int, ...]
) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        fail(dataset, "check_dataset_load", what, f"{dtype} {expected}", type(value).__name__)
    if value.dtype != dtype or shape(value) != expected:
        fail(
            dataset,
            "check_dataset_load",
            what,
            f"{dtype} {expected}",
            f"{value.dtype} {shape(value)}",
        )
    return value


def _check_inputs(dataset: Dataset, batch: Batch, info: DatasetInfo, n: int) -> None:
    name = "check_dataset_load"
    if info.modality in _IMAGE:
        images = batch.images
        if images is None or images.dim() != 4 or not images.is_floating_point():
            fail(
                dataset,
                name,
                "images",
                "a float (N, C, H, W) tensor",
                None if images is None else f"{images.dtype} {shape(images)}",
            )
        hw = tuple(images.shape[-2:]) if info.image_size is None else tuple(info.image_size)
        _check_field(dataset, "images", images, images.dtype, (n, info.channels, *hw))
        if not bool(torch.isfinite(images).all()):
            fail(dataset, name, "images", "finite pixel values", "NaN or inf")
    if info.modality in _TEXT:
        tokens = batch.tokens
        length = info.seq_len or (
            tokens.shape[-1] if tokens is not None and tokens.dim() == 2 else -1
        )
        tokens = _check_field(dataset, "tokens", tokens, torch.int64, (n, length))
        if info.vocab_size and n and not bool(((tokens >= 0) & (tokens < info.vocab_size)).all()):
            fail(
                dataset,
                name,
                "token ids",
                f"ids in [0, {info.vocab_size})",
                (int(tokens.min()), int(tokens.max())),
            )
    if batch.texts is not None and (
        len(batch.texts) != n or not all(isinstance(t, str) for t in batch.texts)
    ):
        fail(dataset, name, "texts", f"{n} strings", repr(batch.texts)[:80])


def _check_ground_truth(dataset: Dataset, batch: Batch, info: DatasetInfo, n: int) -> None:
    name, k = "check_dataset_load", info.num_outputs
    for field, need in (
        ("masks", Provides.MASKS),
        ("rationales", Provides.RATIONALES),
        ("references", Provides.REFERENCES),
    ):
        present = getattr(batch, field) is not None
        if present != (need in info.provides):
            fail(
                dataset,
                name,
                f"batch.{field}",
                f"present exactly when info().provides has {need.value!r}",
                "present" if present else "missing",
            )
    if batch.masks is not None:
        hw = tuple(batch.images.shape[-2:]) if batch.images is not None else (-1, -1)
        _check_field(dataset, "masks", batch.masks, torch.bool, (n, k, *hw))
    if batch.rationales is not None:
        length = batch.tokens.shape[-1] if batch.tokens is not None else -1
        _check_field(dataset, "rationales", batch.rationales, torch.bool, (n, k, length))
    if batch.references is not None:
        ok = len(batch.references) == n and all(
            isinstance(r, tuple) and r and all(isinstance(s, str) and s for s in r)
            for r in batch.references
        )
        if not ok:
            fail(
                dataset,
                name,
                "references",
                f"{n} non-empty tuples of sentences",
                repr(batch.references)[:80],
            )


def check_dataset_load(dataset: Dataset) -> None:
    """``load(ids)`` returns the ids asked for with the shapes and dtypes of the contract."""
    dataset = dataset.clone()
    info = dataset.info()
    ids = sample_ids(dataset)
    batch = dataset.load(ids)
    if not isinstance(batch, Batch) or tuple(batch.ids) != tuple(ids):
        fail(
            dataset, "check_dataset_load", "load(ids).ids", tuple(ids), getattr(batch, "ids", batch)
        )
    n = len(ids)
    _check_labels(dataset, batch, info, n)
    _check_inputs(dataset, batch, info, n)
    _check_ground_truth(dataset, batch, info, n)


def batch_differences(a: Batch, b: Batch) -> list[str]:
    """Return the names of the fields in which two batches differ."""
    out = []
    for field in (
        "ids",
        "labels",
        "images",
        "tokens",
        "masks",
        "rationales",
        "texts",
        "references",
    ):
        x, y = getattr(a, field), getattr(b, field)
        if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor):
            same = x.shape == y.shape and bool(torch.equal(x, y))
        else:
            same = x == y
        if not same:
            out.append(field)
    return out


def check_dataset_load_order(dataset: Dataset) -> None:
    """``load`` keeps the order of the ids it is given."""
    dataset = dataset.clone()
    ids = sample_ids(dataset)
    forward = dataset.load(ids)
    backward = dataset.load(ids[::-1])
    diff = batch_differences(forward.index(list(range(len(ids)))[::-1]), backward)
    if diff:
        fail(
            dataset,
            "check_dataset_load_order",
            "load(reversed ids)",
            "the rows of load(ids) reversed",
            f"different {', '.join(diff)}",
        )


def check_dataset_load_deterministic(dataset: Dataset) -> None:
    """Check that loading the same ids twice, or from an equal instance, gives equal batches."""
    ids = sample_ids(dataset)
    first = dataset.clone()
    diff = batch_differences(first.load(ids), first.load(ids)) or batch_differences(
        first.load(ids), dataset.clone().load(ids)
    )
    if diff:
        fail(
            dataset,
            "check_dataset_load_deterministic",
            "two loads of the same ids",
            "identical batches",
            f"different {', '.join(diff)}",
        )


def checks(dataset: Dataset) -> Iterator[tuple[str, Check]]:
    """Yield the dataset checks."""
    for check in (
        check_dataset_info,
        check_dataset_splits,
        check_dataset_splits_deterministic,
        check_dataset_load,
        check_dataset_load_order,
        check_dataset_load_deterministic,
    ):
        yield check.__name__, check  # type: ignore[misc]
