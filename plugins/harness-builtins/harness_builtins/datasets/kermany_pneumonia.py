"""Kermany et al. pediatric pneumonia radiographs: train|val|test/NORMAL|PNEUMONIA/*.jpeg."""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

import torch

from harness.contracts import DatasetInfo, DatasetTags, Modality, Task
from harness.errors import DataError
from harness_builtins.datasets import _files, _fixtures
from harness_builtins.datasets._files import Index, Record

CLASS_FOLDERS: tuple[str, ...] = ("NORMAL", "PNEUMONIA")
_PATIENT_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^person(\d+)_", re.IGNORECASE), "person{}"),  # person1_bacteria_1.jpeg
    (re.compile(r"(?:^|-)IM-(\d+)-", re.IGNORECASE), "IM-{}"),  # [NORMAL2-]IM-0115-0001.jpeg
)


class KermanyPneumonia(_files.FileDataset):
    """The chest X-ray pneumonia dataset of Kermany et al. (2018) in its folder layout.

    ``root/{train,val,test}/{NORMAL,PNEUMONIA}/*.jpeg`` (folder names matched
    case-insensitively; ``.jpg`` and ``.png`` accepted; hidden files such as
    ``.DS_Store`` or macOS ``._*`` skipped). Sample ids are the paths relative
    to ``root``. When ``root/val`` is absent, ``val_fraction`` of the training
    patients is held out by ``seed``, whole patients at a time: the patient is
    ``person<N>`` or ``IM-<NNNN>`` parsed from the file name (a name matching
    neither is its own patient). Nothing is downloaded:
    get the data from Mendeley Data (doi:10.17632/rscbjbr9sj.2) or Kaggle
    ("chest-xray-pneumonia") and point ``root`` at the unpacked ``chest_xray``
    folder.

    Parameters
    ----------
    root : str
        Folder holding ``train``, ``test`` and optionally ``val``.
    image_size : int
        Side the grayscale images are resized to.
    max_per_class : int or None
        Keep at most this many images per class and split (the first by file name).
    val_fraction : float
        Share of the training patients held out when there is no ``val`` folder.
    seed : int
        Seed of that hold-out.
    """

    name: ClassVar[str] = "xray.kermany_pneumonia"
    version: ClassVar[str] = "1"
    tags: ClassVar[DatasetTags] = DatasetTags(modality=Modality.IMAGE, task=Task.MULTICLASS)
    citation: ClassVar[str] = (
        "Kermany et al. Identifying Medical Diagnoses and Treatable Diseases by Image-Based "
        "Deep Learning. Cell 172(5), 2018."
    )
    class_names: ClassVar[tuple[str, ...]] = ("normal", "pneumonia")

    def __init__(
        self,
        *,
        root: str = "data/chest_xray",
        image_size: int = 128,
        max_per_class: int | None = None,
        val_fraction: float = 0.1,
        seed: int = 0,
    ) -> None:
        self.root = root
        self.image_size = image_size
        self.max_per_class = max_per_class
        self.val_fraction = val_fraction
        self.seed = seed

    @classmethod
    def conformance_instances(cls, tmp_dir: Path) -> list[KermanyPneumonia]:
        """Write a tiny folder tree into ``tmp_dir`` and return instances reading it."""
        root = _fixtures.write_kermany(tmp_dir / "kermany", per_class=3)
        return [cls(root=str(root), image_size=32)]

    def info(self) -> DatasetInfo:
        """Describe the dataset: 1-channel images, normal vs pneumonia, no masks."""
        return DatasetInfo(
            modality=Modality.IMAGE,
            task=Task.MULTICLASS,
            class_names=self.class_names,
            channels=1,
            image_size=(self.image_size, self.image_size),
        )

    def _scan(self, root: Path, split: str) -> list[tuple[str, int]]:
        folder = root / split
        found: list[tuple[str, int]] = []
        classes = {c.upper(): i for i, c in enumerate(CLASS_FOLDERS)}
        for sub in sorted(p for p in folder.iterdir() if not p.name.startswith(".")):
            if not sub.is_dir():
                continue
            label = classes.get(sub.name.upper())
            if label is None:
                raise DataError(
                    f"{sub}: unknown class folder {sub.name!r} - expected one of "
                    f"{list(CLASS_FOLDERS)}."
                )
            files = _files.visible_images(sub)
            if self.max_per_class is not None:
                files = files[: self.max_per_class]
            found += [(p.relative_to(root).as_posix(), label) for p in files]
        if not found:
            raise DataError(
                f"{folder}: no images - expected {folder}/NORMAL/*.jpeg and "
                f"{folder}/PNEUMONIA/*.jpeg."
            )
        return found

    def _build_index(self) -> Index:
        root = Path(self.root).expanduser()
        for split in ("train", "test"):
            if not (root / split).is_dir():
                raise DataError(
                    f"{root / split}: folder not found - expected the Kermany layout "
                    f"{root}/train|val|test/NORMAL|PNEUMONIA/*.jpeg (val optional)."
                )
        if not 0.0 <= self.val_fraction < 1.0:
            raise DataError(
                f"dataset {self.name!r}: parameter val_fraction - expected a value in [0, 1), "
                f"got {self.val_fraction!r}."
            )
        rows = {split: self._scan(root, split) for split in ("train", "test")}
        if (root / "val").is_dir():
            rows["val"] = self._scan(root, "val")
        else:
            groups = {i: patient_of(i) for i, _ in rows["train"]}
            held = _files.seeded_split(list(groups.values()), self.val_fraction, self.seed)
            rows["val"] = [r for r in rows["train"] if groups[r[0]] in held]
            rows["train"] = [r for r in rows["train"] if groups[r[0]] not in held]
        records = {
            sample_id: Record(
                path=root / sample_id, label=torch.tensor(label), where=f"folder {root}"
            )
            for split_rows in rows.values()
            for sample_id, label in split_rows
        }
        splits = {split: [i for i, _ in rows[split]] for split in ("train", "val", "test")}
        return Index(records=records, splits=splits)


def patient_of(sample_id: str) -> str:
    """Return the patient of a Kermany image: ``person<N>`` or ``IM-<NNNN>``, else the id."""
    stem = sample_id.rsplit("/", 1)[-1]
    for pattern, key in _PATIENT_PATTERNS:
        match = pattern.search(stem)
        if match:
            return key.format(match.group(1))
    return sample_id
