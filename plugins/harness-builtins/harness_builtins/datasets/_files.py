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

import numpy as np
import torch
from torch import Tensor

from harness.contracts import Dataset, Sample
from harness.errors import DataError, PluginError, did_you_mean
from harness_builtins.datasets._synthetic_common import standardise

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpeg", ".jpg", ".png"})
HIGH_DEPTH_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})


@dataclass(frozen=True)
class Record:
    """One sample of a file-based dataset.

    ``where`` locates it for error messages (e.g. ``train.csv line 7``);
    ``boxes`` are (class index, x, y, w, h) in the dataset's box frame
    (``FileDataset._box_frame``: NIH's 1024 x 1024).
    """

    path: Path
    label: Tensor
    where: str
    boxes: tuple[tuple[int, float, float, float, float], ...] = ()


@dataclass(frozen=True)
class Index:
    """All records of a dataset by id, and the ids of each split."""

    records: dict[str, Record]
    splits: dict[str, list[str]] = field(default_factory=dict)


def read_image(path: Path, size: int, where: str) -> tuple[Tensor, tuple[int, int]]:
    """Read ``path`` with Pillow as grayscale, resize to ``size`` and standardise.

    Returns the (1, H, W) image and the file's own (width, height).

    8-bit images are converted to Pillow mode ``L`` (0..255, divided by 255).
    High-bit-depth grayscale (modes ``I;16*``, ``I``, ``F``, e.g. 16-bit PNG)
    is read as floats instead of being clipped to 255: ``I;16*`` divided by
    65535, ``I`` and ``F`` scaled by each image's own min and max (a constant
    image becomes 0). Both are then resized bilinearly like 8-bit images.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            original = img.size
            if img.mode in HIGH_DEPTH_MODES:
                values = _high_depth_unit(img)
                resized = Image.fromarray(values).resize((size, size), Image.Resampling.BILINEAR)
                pixels = torch.from_numpy(np.asarray(resized, dtype=np.float32).copy())
            else:
                gray = img.convert("L").resize((size, size), Image.Resampling.BILINEAR)
                raw = torch.frombuffer(bytearray(gray.tobytes()), dtype=torch.uint8)
                pixels = raw.reshape(size, size).float() / 255.0
    except FileNotFoundError as exc:
        raise DataError(
            f"{path}: image file not found ({where}) - expected a readable image file."
        ) from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(
            f"{path}: cannot read image ({where}) - expected a JPEG or PNG file, got error: {exc}"
        ) from exc
    return standardise(pixels.reshape(1, size, size)), original


def _high_depth_unit(img: Any) -> Any:
    """Return a high-bit-depth Pillow image as a float32 array scaled to [0, 1]."""
    values = np.asarray(img, dtype=np.float64)
    if img.mode.startswith("I;16"):
        return (values / 65535.0).astype(np.float32)
    low, high = float(values.min()), float(values.max())
    span = high - low
    scaled = (values - low) / span if span > 0 else np.zeros_like(values)
    return scaled.astype(np.float32)


def visible_images(folder: Path) -> list[Path]:
    """Return the image files of ``folder`` by name, skipping hidden ones (``.DS_Store``, ``._x``)."""
    return sorted(
        p
        for p in folder.iterdir()
        if not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )


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
    image_size: tuple[int, int],
    num_classes: int,
    size: int,
) -> Tensor:
    """Rasterise (class, x, y, w, h) boxes onto a (K, size, size) mask.

    Boxes are in the pixels of the stored image of (width, height)
    ``image_size``, which is resized to ``size`` x ``size``; a mask pixel
    belongs to a box when its centre, mapped back to that frame, lies inside.
    """
    if not boxes:
        return torch.zeros(num_classes, size, size, dtype=torch.bool)
    width, height = image_size
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

    Subclasses build an :class:`Index` in ``_build_index`` and declare ``root``
    and ``image_size``; masks are rasterised from record boxes when ``_has_masks``.
    """

    root: str
    image_size: int

    def check_params(self) -> None:
        """Raise a PluginError when ``root`` is not an existing folder."""
        path = Path(self.root).expanduser()
        if not path.is_dir():
            what = "a file, not a folder" if path.exists() else "no such folder"
            raise PluginError(
                f"dataset {self.name!r}: parameter root - expected an existing dataset folder, "
                f"got {self.root!r} ({what}).",
                plugin=self.name,
            )

    @abc.abstractmethod
    def _build_index(self) -> Index:
        """Scan the files and return every record and split."""

    def _has_masks(self) -> bool:
        return False

    def _box_frame(self, stored: tuple[int, int]) -> tuple[int, int]:
        """Return the (width, height) frame record boxes are in (default: the stored image's)."""
        return stored

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
        image, stored = read_image(record.path, self.image_size, record.where)
        mask = None
        if self._has_masks():
            classes = len(self.info().class_names)
            mask = boxes_to_masks(record.boxes, self._box_frame(stored), classes, self.image_size)
        return Sample(id=sample_id, label=record.label, image=image, mask=mask)


def seeded_split(groups: Sequence[str], fraction: float, seed: int) -> set[str]:
    """Return the groups (e.g. patients) drawn for a held-out share ``fraction``, by ``seed``."""
    unique = sorted(set(groups))
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(unique), generator=gen).tolist()
    count = max(1, round(len(unique) * fraction)) if unique and fraction > 0 else 0
    return {unique[i] for i in order[:count]}
