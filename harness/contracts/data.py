"""Data carriers exchanged between plugins: Sample, Batch, Attribution, DatasetInfo.

Shapes (N samples, C channels, H x W pixels, K classes or labels, L tokens):

- ``images``: float (N, C, H, W)
- ``tokens``: int64 (N, L) token ids, 0 is padding
- ``labels``: int64 (N,) class index for multi-class, (N, K) CheXpert states
  1 / 0 / -1 (uncertain) / -2 (missing) for multi-label
- ``masks``: bool (N, K, H, W), one ground-truth mask per class or finding
- ``rationales``: bool (N, K, L), one token rationale per class
- ``texts``: raw report or abstract text; ``references``: reference sentences
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import torch
from torch import Tensor

from harness.contracts.tags import Modality, Provides, Task
from harness.errors import DataError

UNCERTAIN = -1
MISSING = -2


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset instance holds; the planner and the models read it."""

    modality: Modality
    task: Task
    class_names: tuple[str, ...]
    provides: frozenset[Provides] = frozenset()
    channels: int = 1
    image_size: tuple[int, int] | None = None
    vocab_size: int | None = None
    seq_len: int | None = None

    @property
    def num_outputs(self) -> int:
        """Number of classes (multi-class) or labels (multi-label)."""
        return len(self.class_names)


@dataclass(frozen=True)
class Sample:
    """One item of a dataset; fields a dataset lacks stay None."""

    id: str
    label: Tensor
    image: Tensor | None = None
    tokens: Tensor | None = None
    mask: Tensor | None = None
    rationale: Tensor | None = None
    text: str | None = None
    references: tuple[str, ...] | None = None


_TENSOR_FIELDS = ("labels", "images", "tokens", "masks", "rationales")
_TUPLE_FIELDS = ("ids", "texts", "references")


@dataclass(frozen=True)
class Batch:
    """A batch of samples; every present field has N rows."""

    ids: tuple[str, ...]
    labels: Tensor
    images: Tensor | None = None
    tokens: Tensor | None = None
    masks: Tensor | None = None
    rationales: Tensor | None = None
    texts: tuple[str, ...] | None = None
    references: tuple[tuple[str, ...], ...] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def collate(cls, samples: Sequence[Sample]) -> Batch:
        """Stack samples into a batch."""

        def stack(name: str) -> Tensor | None:
            values = [getattr(s, name) for s in samples]
            return None if any(v is None for v in values) else torch.stack(values)

        def tup(name: str) -> tuple[Any, ...] | None:
            values = [getattr(s, name) for s in samples]
            return None if any(v is None for v in values) else tuple(values)

        return cls(
            ids=tuple(s.id for s in samples),
            labels=torch.stack([s.label for s in samples]),
            images=stack("image"),
            tokens=stack("tokens"),
            masks=stack("mask"),
            rationales=stack("rationale"),
            texts=tup("text"),
            references=tup("references"),
        )

    @classmethod
    def concat(cls, batches: Sequence[Batch]) -> Batch:
        """Concatenate batches row-wise."""
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            values = [getattr(b, f.name) for b in batches]
            if any(v is None for v in values):
                kwargs[f.name] = None
            elif f.name in _TENSOR_FIELDS:
                kwargs[f.name] = torch.cat(values)
            else:
                kwargs[f.name] = tuple(x for v in values for x in v)
        return cls(**kwargs)

    def to(self, device: torch.device | str) -> Batch:
        """Return the batch with every tensor on ``device``."""
        moved = {
            n: getattr(self, n).to(device) for n in _TENSOR_FIELDS if getattr(self, n) is not None
        }
        return replace(self, **moved)

    def index(self, rows: Tensor | Sequence[int]) -> Batch:
        """Select (or repeat) rows; ``rows`` may contain duplicates."""
        idx = torch.as_tensor(rows, dtype=torch.long)
        cpu = idx.cpu().tolist()
        kwargs: dict[str, Any] = {}
        for name in _TENSOR_FIELDS:
            value = getattr(self, name)
            kwargs[name] = None if value is None else value[idx.to(value.device)]
        for name in _TUPLE_FIELDS:
            value = getattr(self, name)
            kwargs[name] = None if value is None else tuple(value[i] for i in cpu)
        return Batch(**kwargs)

    def repeat_interleave(self, k: int) -> Batch:
        """Repeat every row ``k`` times in place (row 0 k times, then row 1 ...)."""
        return self.index(torch.arange(len(self)).repeat_interleave(k))

    def with_images(self, images: Tensor) -> Batch:
        """Return the batch with ``images`` replaced (same N)."""
        return replace(self, images=images)

    def target_masks(self, targets: Tensor) -> Tensor:
        """Return the (N, H, W) ground-truth mask of each row's target class."""
        if self.masks is None:
            raise ValueError("batch has no masks")
        return self.masks[self._per_class_rows(targets, self.masks, "masks")]

    def target_rationales(self, targets: Tensor) -> Tensor:
        """Return the (N, L) token rationale of each row's target class."""
        if self.rationales is None:
            raise ValueError("batch has no rationales")
        return self.rationales[self._per_class_rows(targets, self.rationales, "rationales")]

    def _per_class_rows(self, targets: Tensor, field: Tensor, what: str) -> tuple[Tensor, Tensor]:
        """Return (rows, targets) indexing ``field``'s (N, K, ...) per-class entries, or raise."""
        targets = targets.to(field.device).long()
        bad = ((targets < 0) | (targets >= field.shape[1])).nonzero().flatten()
        if len(bad):
            i = int(bad[0])
            raise DataError(
                f"batch row {self.ids[i]!r}: target {int(targets[i])} - expected a class index in "
                f"[0, {field.shape[1]}) of its {what}, got {int(targets[i])}."
            )
        return torch.arange(len(self), device=field.device), targets


@dataclass(frozen=True)
class Attribution:
    """What an explainer returns for N (sample, target) rows.

    ``pixels`` (N, H, W) relevance over the image, ``tokens`` (N, L) relevance
    over the tokens, ``sentences`` a generated explanation per row. At least one
    is set; a generated-text explainer sets ``sentences`` and its attention map
    as ``pixels``.
    """

    pixels: Tensor | None = None
    tokens: Tensor | None = None
    sentences: tuple[str, ...] | None = None

    def __len__(self) -> int:
        for value in (self.pixels, self.tokens, self.sentences):
            if value is not None:
                return len(value)
        return 0

    def to(self, device: torch.device | str) -> Attribution:
        """Return the attribution with its tensors on ``device``."""
        return replace(
            self,
            pixels=None if self.pixels is None else self.pixels.to(device),
            tokens=None if self.tokens is None else self.tokens.to(device),
        )

    def index(self, rows: Tensor | Sequence[int]) -> Attribution:
        """Select (or repeat) rows."""
        idx = torch.as_tensor(rows, dtype=torch.long)
        return Attribution(
            pixels=None if self.pixels is None else self.pixels[idx.to(self.pixels.device)],
            tokens=None if self.tokens is None else self.tokens[idx.to(self.tokens.device)],
            sentences=None
            if self.sentences is None
            else tuple(self.sentences[i] for i in idx.tolist()),
        )
