"""A dataset whose split depends on Python's salted string hash (a common plugin mistake)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from harness.testing import fixtures as fx


class HashSplitLesions(fx.ToyLesions):
    """ToyLesions whose train / test split is ``hash(id) % 4``: it changes between processes."""

    name: ClassVar[str] = "toy.hash_split"

    def splits(self) -> Mapping[str, Sequence[str]]:
        ids = [i for split in super().splits().values() for i in split]
        return {
            "train": [i for i in ids if hash(i) % 4],
            "val": [],
            "test": [i for i in ids if not hash(i) % 4],
        }
