"""Shared reading of file-based chest X-ray datasets: images, CSVs, boxes, lazy index.

Every failure becomes a :class:`DataError` naming the file, the 1-based CSV
line where there is one, and what was expected.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from harness.contracts import Dataset, Sample
from harness.errors import DataError, did_you_mean
from harness_builtins.datasets._synthetic_common import standardise

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpeg", ".jpg", ".png"})


@dataclass(frozen=True)
class Record:
    """One sample of a file-based dataset.

    ``where`` locates it for error messages (e.g. ``train.csv line 7``);
    ``boxes`` are (class index, x, y, w, h) in original pixels, and
    ``original_size`` is (width, height) when the CSV gives it.
    """

    path: Path
    label: Tensor
    where: str
    boxes: tuple[tuple[int, float, float, float, float], ...] = ()
    original_size: tuple[int, int] | None = None


@dataclass(frozen=True)
class Index:
    """All records of a dataset by id, and the ids of each split."""

    records: dict[str, Record]
    splits: dict[str, list[str]] = field(default_factory=dict)


def read_image(path: Path, size: int, where: str) -> Tensor:
    """Read ``path`` with Pillow as grayscale, resize to ``size`` and standardise: (1, H, W)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            gray = img.convert("L").resize((size, size), Image.Resampling.BILINEAR)
    except FileNotFoundError as exc:
        raise DataError(
            f"{path}: image file not found ({where}) - expected a readable image file."
        ) from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(
            f"{path}: cannot read image ({where}) - expected a JPEG or PNG file, got error: {exc}"
        ) from exc
    pixels = torch.frombuffer(bytearray(gray.tobytes()), dtype=torch.uint8).reshape(1, size, size)
    return standardise(pixels.float() / 255.0)


def image_size_of(path: Path, where: str) -> tuple[int, int]:
    """Return (width, height) of an image file without decoding its pixels."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return img.size
    except FileNotFoundError as exc:
        raise DataError(
            f"{path}: image file not found ({where}) - expected a readable image file."
        ) from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(
            f"{path}: cannot read image ({where}) - expected a JPEG or PNG file."
        ) from exc


def read_csv(path: Path, required: Iterable[str]) -> Any:
    """Read a CSV as strings (blank cells stay ""), checking that ``required`` columns exist."""
    import pandas as pd

    if not path.is_file():
        raise DataError(f"{path}: CSV file not found - expected a file at this path.")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise DataError(
            f"{path}: cannot parse CSV - expected comma-separated text, got error: {exc}"
        ) from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    for column in required:
        if column not in frame.columns:
            present = [c for c in frame.columns if not c.startswith("Unnamed")]
            raise DataError(
                f"{path}: missing column {column!r} - expected columns {sorted(required)}."
                f"{did_you_mean(column, present)}"
            )
    return frame


def csv_line(row: int) -> int:
    """Return the 1-based file line of the 0-based data row ``row`` (the header is line 1)."""
    return row + 2


def boxes_to_masks(
    boxes: Sequence[tuple[int, float, float, float, float]],
    original_size: tuple[int, int],
    num_classes: int,
    size: int,
) -> Tensor:
    """Rasterise (class, x, y, w, h) boxes given in original pixels onto a (K, size, size) mask.

    A pixel belongs to a box when its centre, mapped back to original pixel
    coordinates, lies inside the box.
    """
    if not boxes:
        return torch.zeros(num_classes, size, size, dtype=torch.bool)
    width, height = original_size
    table = torch.tensor([b[1:] for b in boxes], dtype=torch.float64)
    classes = torch.tensor([b[0] for b in boxes])
    centres = torch.arange(size, dtype=torch.float64) + 0.5
    xs = centres * (width / size)
    ys = centres * (height / size)
    inside_x = (xs[None] >= table[:, 0:1]) & (xs[None] <= table[:, 0:1] + table[:, 2:3])
    inside_y = (ys[None] >= table[:, 1:2]) & (ys[None] <= table[:, 1:2] + table[:, 3:4])
    per_box = (inside_y[:, :, None] & inside_x[:, None, :]).float()
    counts = torch.zeros(num_classes, size, size).index_add_(0, classes, per_box)
    return counts > 0


class FileDataset(Dataset, abc.ABC):
    """Lazy index plus per-sample image reading, shared by the file-based datasets.

    Subclasses build an :class:`Index` in ``_build_index`` and declare
    ``image_size``; masks are rasterised from record boxes when ``_has_masks``.
    """

    image_size: int

    @abc.abstractmethod
    def _build_index(self) -> Index:
        """Scan the files and return every record and split."""

    def _has_masks(self) -> bool:
        return False

    def _index(self) -> Index:
        cached: Index | None = getattr(self, "_cached_index", None)
        if cached is None:
            cached = self._build_index()
            log.info("%s: indexed %d samples", self.name, len(cached.records))
            self._cached_index = cached
        return cached

    def splits(self) -> Mapping[str, Sequence[str]]:
        """Return the sample ids of train, val and test."""
        return self._index().splits

    def _get(self, sample_id: str) -> Sample:
        record = self._index().records.get(sample_id)
        if record is None:
            raise DataError(
                f"dataset {self.name!r}: unknown sample id {sample_id!r} - "
                "expected an id from splits()."
            )
        image = read_image(record.path, self.image_size, record.where)
        mask = None
        if self._has_masks():
            size = record.original_size or image_size_of(record.path, record.where)
            mask = boxes_to_masks(record.boxes, size, len(self.info().class_names), self.image_size)
        return Sample(id=sample_id, label=record.label, image=image, mask=mask)


def seeded_split(groups: Sequence[str], fraction: float, seed: int) -> set[str]:
    """Return the groups (e.g. patients) drawn for a held-out share ``fraction``, by ``seed``."""
    unique = sorted(set(groups))
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(unique), generator=gen).tolist()
    count = max(1, round(len(unique) * fraction)) if unique and fraction > 0 else 0
    return {unique[i] for i in order[:count]}
