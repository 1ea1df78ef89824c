"""CheXpert: a CSV of image paths and 14 observations in states 1 / 0 / -1 / blank."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch

from harness.contracts import MISSING, UNCERTAIN, DatasetInfo, DatasetTags, Modality, Task
from harness.errors import DataError
from harness_builtins.datasets import _files, _fixtures
from harness_builtins.datasets._files import Index, Record

OBSERVATIONS = _fixtures.CHEXPERT_OBSERVATIONS
_STATES: dict[str, int] = {"1": 1, "1.0": 1, "0": 0, "0.0": 0, "-1": -1, "-1.0": -1, "": MISSING}
POLICIES: tuple[str, ...] = ("ignore", "ones", "zeros")


class CheXpert(_files.FileDataset):
    """CheXpert (Irvin et al. 2019) read from its ``train.csv`` / ``valid.csv``.

    Each CSV has a ``Path`` column and the 14 observation columns holding 1,
    0, -1 (uncertain) or blank (not mentioned). Blank becomes -2 (missing),
    which losses and masked metrics skip. Uncertain labels follow
    ``uncertainty``, the policies of the CheXpert paper: ``"ignore"`` keeps -1
    (the loss skips it), ``"ones"`` maps it to 1 (U-Ones), ``"zeros"`` to 0
    (U-Zeros). The test split is ``valid.csv``; validation is carved from
    the training rows by ``seed``, whole patients at a time. Nothing is
    downloaded: request CheXpert from the Stanford AIMI site and point ``root``
    at the unpacked ``CheXpert-v1.0-small`` (or full) folder.

    Parameters
    ----------
    root : str
        Dataset folder; ``Path`` cells are resolved against it or its parent.
    train_csv, valid_csv : str
        CSV file names (or paths) relative to ``root``.
    uncertainty : {"ignore", "ones", "zeros"}
        Policy for uncertain (-1) labels.
    image_size : int
        Side the grayscale images are resized to.
    val_fraction : float
        Share of training patients held out for validation.
    seed : int
        Seed of that hold-out.
    max_rows : int or None
        Read at most this many rows of each CSV (for quick runs).
    """

    name: ClassVar[str] = "xray.chexpert"
    version: ClassVar[str] = "1"
    tags: ClassVar[DatasetTags] = DatasetTags(modality=Modality.IMAGE, task=Task.MULTILABEL)
    citation: ClassVar[str] = (
        "Irvin et al. CheXpert: A Large Chest Radiograph Dataset with Uncertainty Labels and "
        "Expert Comparison. AAAI 2019."
    )
    class_names: ClassVar[tuple[str, ...]] = OBSERVATIONS

    def __init__(
        self,
        *,
        root: str = "data/CheXpert-v1.0-small",
        train_csv: str = "train.csv",
        valid_csv: str = "valid.csv",
        uncertainty: str = "ignore",
        image_size: int = 128,
        val_fraction: float = 0.1,
        seed: int = 0,
        max_rows: int | None = None,
    ) -> None:
        self.root = root
        self.train_csv = train_csv
        self.valid_csv = valid_csv
        self.uncertainty = uncertainty
        self.image_size = image_size
        self.val_fraction = val_fraction
        self.seed = seed
        self.max_rows = max_rows

    @classmethod
    def conformance_instances(cls, tmp_dir: Path) -> list[CheXpert]:
        """Write a tiny CheXpert tree into ``tmp_dir`` and return instances reading it."""
        root = _fixtures.write_chexpert(tmp_dir / "chexpert", n_train=8, n_valid=4)
        return [
            cls(root=str(root), image_size=32),
            cls(root=str(root), image_size=32, uncertainty="ones"),
        ]

    def info(self) -> DatasetInfo:
        """Describe the dataset: 1-channel images, 14 CheXpert observations, no masks."""
        return DatasetInfo(
            modality=Modality.IMAGE,
            task=Task.MULTILABEL,
            class_names=self.class_names,
            channels=1,
            image_size=(self.image_size, self.image_size),
        )

    def _resolve(self, root: Path, cell: str) -> Path:
        rel = Path(cell)
        if rel.is_absolute():
            return rel
        if rel.parts and rel.parts[0] == root.name:
            return root.parent / rel
        return root / rel

    def _records(self, root: Path, csv_name: str) -> list[tuple[str, Record]]:
        csv_path = root / csv_name
        frame = _files.read_csv(csv_path, ["Path", *OBSERVATIONS])
        if self.max_rows is not None:
            frame = frame.iloc[: self.max_rows]
        replace = {"ignore": UNCERTAIN, "ones": 1, "zeros": 0}[self.uncertainty]
        out = []
        for row, values in enumerate(frame[["Path", *OBSERVATIONS]].itertuples(index=False)):
            where = f"{csv_path} line {_files.csv_line(row)}"
            states = [
                self._state(str(v), column, where)
                for v, column in zip(values[1:], OBSERVATIONS, strict=True)
            ]
            label = torch.tensor(states)
            label[label == UNCERTAIN] = replace
            path_cell = str(values[0]).strip()
            if not path_cell:
                raise DataError(f"{where}: column 'Path' is blank - expected an image path.")
            out.append(
                (path_cell, Record(path=self._resolve(root, path_cell), label=label, where=where))
            )
        return out

    @staticmethod
    def _state(value: str, column: str, where: str) -> int:
        state = _STATES.get(value.strip())
        if state is None:
            raise DataError(
                f"{where}: column {column!r} holds {value!r} - expected 1.0, 0.0, -1.0 or blank."
            )
        return state

    def _build_index(self) -> Index:
        if self.uncertainty not in POLICIES:
            raise DataError(
                f"dataset {self.name!r}: parameter uncertainty - expected one of {list(POLICIES)}, "
                f"got {self.uncertainty!r}."
            )
        root = Path(self.root).expanduser()
        if not root.is_dir():
            raise DataError(
                f"{root}: folder not found - expected the CheXpert folder holding {self.train_csv}."
            )
        train = self._records(root, self.train_csv)
        test = self._records(root, self.valid_csv)
        held = _files.seeded_split([_patient(p) for p, _ in train], self.val_fraction, self.seed)
        records: dict[str, Record] = {}
        splits: dict[str, list[str]] = {"train": [], "val": [], "test": []}
        for split_name, rows in (("train", train), ("test", test)):
            for path_cell, record in rows:
                if path_cell in records:
                    raise DataError(
                        f"{record.where}: duplicate Path {path_cell!r} - expected each image once."
                    )
                records[path_cell] = record
                name = (
                    "val" if split_name == "train" and _patient(path_cell) in held else split_name
                )
                splits[name].append(path_cell)
        return Index(records=records, splits=splits)


def _patient(path_cell: str) -> Any:
    """Return the ``patientNNNNN`` folder of a CheXpert path (the row itself if none)."""
    return next((part for part in Path(path_cell).parts if part.startswith("patient")), path_cell)
