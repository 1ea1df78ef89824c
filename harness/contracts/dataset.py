"""Dataset contract: named splits of stable ids, loaded into batches on demand."""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping, Sequence
from typing import ClassVar, final

import torch

from harness.contracts.component import Component
from harness.contracts.data import Batch, DatasetInfo, Sample
from harness.contracts.tags import DatasetTags
from harness.contracts.validation import check_samples, load_error
from harness.errors import HarnessError

SPLITS: tuple[str, ...] = ("train", "val", "test")


class Dataset(Component, abc.ABC):
    """Base class of datasets; subclasses implement ``info``, ``splits`` and ``_get``.

    ``splits()`` maps "train", "val" and "test" to stable sample ids; ``load``
    turns ids into a :class:`Batch`. Heavy work (reading a CSV, generating
    images) happens lazily on first use, never in ``__init__``.
    """

    tags: ClassVar[DatasetTags] = DatasetTags()

    @abc.abstractmethod
    def info(self) -> DatasetInfo:
        """Describe this dataset instance (modality, task, classes, ground truth)."""

    @abc.abstractmethod
    def splits(self) -> Mapping[str, Sequence[str]]:
        """Return the sample ids of each split: keys "train", "val", "test"."""

    @abc.abstractmethod
    def _get(self, sample_id: str) -> Sample:
        """Return one sample; raise :class:`DataError` naming the file or row on bad data."""

    @final
    def load(self, ids: Sequence[str]) -> Batch:
        """Load the samples ``ids`` as one batch.

        Parameters
        ----------
        ids : Sequence[str]
            Sample ids of this dataset.

        Returns
        -------
        Batch
            The samples stacked in the order of ``ids``.

        Raises
        ------
        DataError
            When ``_get`` fails for an id (the original error is chained) or
            a sample's field has another shape than the first sample's.
        ContractViolation
            When ``_get`` returns a sample with another id.
        """
        samples = []
        for i in ids:
            try:
                samples.append(self._get(i))
            except HarnessError:
                raise
            except Exception as exc:
                raise load_error(self, i, exc) from exc
        check_samples(samples, ids, dataset=self)
        return Batch.collate(samples)

    @final
    def iter_batches(
        self,
        ids: Sequence[str],
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
    ) -> Iterator[Batch]:
        """Yield batches of ``ids``, shuffled reproducibly when asked."""
        order = list(ids)
        if shuffle:
            perm = torch.randperm(len(order), generator=torch.Generator().manual_seed(seed))
            order = [order[i] for i in perm.tolist()]
        for start in range(0, len(order), batch_size):
            yield self.load(order[start : start + batch_size])
