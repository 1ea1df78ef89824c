"""A dataset of noise images with one checkerboard patch, its class given by the cell size."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

import torch

from harness import DataError, Dataset, DatasetInfo, DatasetTags, Modality, Provides, Sample, Task


class Checkerboard(Dataset):
    """Grayscale noise with a ``patch x patch`` checkerboard at a random place.

    Class 0 ("fine") has cells of ``patch // 4`` pixels, class 1 ("coarse")
    of ``patch // 2``. The patch's square is the mask of its class. Every
    sample is generated from ``(seed, index)``, so equal parameters give
    equal data in any order.

    Parameters
    ----------
    n : int
        Number of samples, split 50 / 25 / 25 into train / val / test.
    size : int
        Image height and width in pixels.
    patch : int
        Side of the checkerboard patch (a multiple of 4, at most ``size``).
    seed : int
        Seed of the generator.
    """

    name: ClassVar[str] = "thirdparty.checkerboard"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = "harness-thirdparty example plugin (synthetic checkerboards)"
    tags: ClassVar[DatasetTags] = DatasetTags(
        modality=Modality.IMAGE, task=Task.MULTICLASS, provides=frozenset({Provides.MASKS})
    )
    CLASSES: ClassVar[tuple[str, str]] = ("fine", "coarse")

    def __init__(self, *, n: int = 24, size: int = 24, patch: int = 8, seed: int = 0) -> None:
        self.n = n
        self.size = size
        self.patch = patch
        self.seed = seed

    def info(self) -> DatasetInfo:
        """Describe the dataset: one channel, two classes, masks."""
        return DatasetInfo(
            modality=Modality.IMAGE,
            task=Task.MULTICLASS,
            class_names=self.CLASSES,
            provides=self.tags.provides,
            channels=1,
            image_size=(self.size, self.size),
        )

    def splits(self) -> Mapping[str, Sequence[str]]:
        """Return half the ids as train, a quarter as val, the rest as test."""
        ids = [f"board-{i:04d}" for i in range(self.n)]
        a, b = self.n // 2, self.n // 2 + self.n // 4
        return {"train": ids[:a], "val": ids[a:b], "test": ids[b:]}

    def _get(self, sample_id: str) -> Sample:
        head, _, tail = sample_id.partition("-")
        if head != "board" or not tail.isdigit() or int(tail) >= self.n:
            raise DataError(
                f"dataset {self.name!r}: unknown sample id {sample_id!r} - expected "
                f"'board-NNNN' with NNNN < {self.n}."
            )
        index = int(tail)
        g = torch.Generator().manual_seed(self.seed * 100_003 + index)
        label = index % 2
        cell = max(1, self.patch // (4 if label == 0 else 2))
        top, left = torch.randint(0, self.size - self.patch + 1, (2,), generator=g).tolist()
        grid = torch.arange(self.patch) // cell
        board = ((grid[:, None] + grid[None, :]) % 2).float()
        image = 0.5 + 0.1 * torch.randn(self.size, self.size, generator=g)
        image[top : top + self.patch, left : left + self.patch] = board
        mask = torch.zeros(2, self.size, self.size, dtype=torch.bool)
        mask[label, top : top + self.patch, left : left + self.patch] = True
        return Sample(id=sample_id, label=torch.tensor(label), image=image[None], mask=mask)
