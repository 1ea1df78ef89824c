"""Shared plumbing of the toy datasets: stable ids, splits, per-sample generators, shapes."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from harness.contracts import Dataset, DatasetInfo
from harness.errors import DataError

FIXTURE_CITATION = "harness.testing conformance fixture (synthetic data generated from a seed)"


class ToyDataset(Dataset, abc.ABC):
    """Base of the toy datasets: ``n`` samples ``<prefix>-0000`` ... split 50 / 25 / 25.

    Every sample is generated on demand from ``(seed, index)``, so loading is
    order-independent and two instances with the same parameters agree.
    Subclasses declare the keyword parameters ``n`` and ``seed``.
    """

    prefix: ClassVar[str] = "toy"
    n: int
    seed: int

    def splits(self) -> Mapping[str, Sequence[str]]:
        """Return the first half as train, the next quarter as val, the rest as test."""
        ids = [f"{self.prefix}-{i:04d}" for i in range(self.n)]
        a = self.n // 2
        b = a + self.n // 4
        return {"train": ids[:a], "val": ids[a:b], "test": ids[b:]}

    def _index(self, sample_id: str) -> int:
        head, _, tail = sample_id.rpartition("-")
        if head == self.prefix and tail.isdigit() and int(tail) < self.n:
            return int(tail)
        raise DataError(
            f"dataset {self.name!r}: unknown sample id {sample_id!r} - expected "
            f"'{self.prefix}-NNNN' with NNNN < {self.n}."
        )

    def _generator(self, index: int) -> torch.Generator:
        return torch.Generator().manual_seed(int(self.seed) * 1_000_003 + index)

    def _info(self, class_names: tuple[str, ...], **inputs: Any) -> DatasetInfo:
        """Return the info whose modality, task and provides are the class tags'."""
        return DatasetInfo(
            modality=self.tags.modality,
            task=self.tags.task,
            class_names=class_names,
            provides=self.tags.provides,
            **inputs,
        )


def coords(size: int) -> tuple[Tensor, Tensor]:
    """Return (yy, xx) pixel-centre coordinates in [-1, 1], each (size, size)."""
    axis = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2.0 - 1.0
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    return yy, xx


def disc(size: int, cy: float, cx: float, r: float) -> Tensor:
    """Return a bool (size, size) disc of radius ``r`` at (cy, cx), all in [-1, 1] units."""
    yy, xx = coords(size)
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2


def uniform(g: torch.Generator, low: float, high: float) -> float:
    """Draw one float in [low, high) from ``g``."""
    return low + (high - low) * float(torch.rand((), generator=g))


def quadrant(cy: float, cx: float) -> tuple[str, str]:
    """Name the quadrant of (cy, cx): ("upper" | "lower", "left" | "right")."""
    return ("upper" if cy < 0 else "lower", "left" if cx < 0 else "right")


def pad(ids: Sequence[int], length: int) -> Tensor:
    """Return ``ids`` truncated or zero-padded to ``length`` as int64."""
    out = torch.zeros(length, dtype=torch.long)
    ids = list(ids)[:length]
    out[: len(ids)] = torch.tensor(ids, dtype=torch.long)
    return out
