"""NIH ChestX-ray14: ``Data_Entry_2017*.csv`` labels, optional bounding boxes as masks."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, ClassVar

import torch

from harness.contracts import DatasetInfo, DatasetTags, Modality, Provides, Task
from harness.errors import DataError, did_you_mean
from harness_builtins.datasets import _files, _fixtures
from harness_builtins.datasets._files import Index, Record

log = logging.getLogger(__name__)

FINDINGS = _fixtures.NIH_FINDINGS
_ALIASES = {"Infiltrate": "Infiltration"}  # BBox_List_2017.csv spells it this way
_BOX_COLUMNS = ("Bbox [x", "y", "w", "h]")
_PATIENT_PREFIX = re.compile(r"^(\d+)_")  # 00000013_005.png -> patient 00000013


class NIHChestXray14(_files.FileDataset):
    """NIH ChestX-ray14 (Wang et al. 2017): 14 findings per image, some with boxes.

    ``Data_Entry_2017*.csv`` lists ``Image Index`` and ``|``-separated
    ``Finding Labels`` ("No Finding" means all negative); images are found in
    ``root/images`` or ``root/images_*/images`` (file names matched
    case-insensitively, hidden files skipped). When ``BBox_List_2017.csv``
    exists, its boxes become one mask per finding and the dataset provides
    masks (all-empty for images without boxes). Boxes (x, y, w, h) are in the
    pixels of the 1024 x 1024 PNGs NIH ships (``box_frame``), so a copy resized
    from them gets its masks in the right place too; the CSV's
    ``OriginalImage[Width`` / ``Height]`` (the size before NIH's downscaling) is
    ignored. Splits follow
    ``train_val_list.txt`` / ``test_list.txt`` when present, else a seeded
    split by patient; validation is carved from train by patient. Patients
    come from ``Patient ID``, or, when that column is absent, from the
    ``NNNNNNNN_`` prefix of the file name (with a warning). Nothing is
    downloaded: get the data from the NIH Box folder
    (nihcc.app.box.com/v/ChestXray-NIHCC) and point ``root`` at it.

    Parameters
    ----------
    root : str
        Folder holding the CSV files and images.
    image_size : int
        Side the grayscale images are resized to.
    boxed_only : bool
        Keep only images with at least one box (the localisation subset).
    val_fraction, test_fraction : float
        Shares of patients held out (test only when there is no ``test_list.txt``).
    seed : int
        Seed of the hold-outs.
    max_rows : int or None
        Read at most this many rows of the data-entry CSV.
    box_frame : int or None
        Side of the square frame the boxes are in: 1024, NIH's PNGs (also right
        for copies resized from them); None reads them in each stored image's
        own pixels.
    """

    name: ClassVar[str] = "xray.nih_chestxray14"
    version: ClassVar[str] = "1"
    tags: ClassVar[DatasetTags] = DatasetTags(
        modality=Modality.IMAGE, task=Task.MULTILABEL, provides=frozenset({Provides.MASKS})
    )
    citation: ClassVar[str] = (
        "Wang et al. ChestX-ray8: Hospital-scale Chest X-ray Database and Benchmarks on "
        "Weakly-Supervised Classification and Localization of Common Thorax Diseases. CVPR 2017."
    )
    class_names: ClassVar[tuple[str, ...]] = FINDINGS

    def __init__(
        self,
        *,
        root: str = "data/ChestX-ray14",
        image_size: int = 128,
        boxed_only: bool = False,
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        seed: int = 0,
        max_rows: int | None = None,
        box_frame: int | None = 1024,
    ) -> None:
        self.root = root
        self.image_size = image_size
        self.boxed_only = boxed_only
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.seed = seed
        self.max_rows = max_rows
        self.box_frame = box_frame

    @classmethod
    def conformance_instances(cls, tmp_dir: Path) -> list[NIHChestXray14]:
        """Write tiny trees (with and without boxes) into ``tmp_dir``; return instances."""
        boxed = _fixtures.write_nih(tmp_dir / "nih_boxes")
        plain = _fixtures.write_nih(tmp_dir / "nih_plain", with_boxes=False, with_lists=False)
        return [cls(root=str(boxed), image_size=32), cls(root=str(plain), image_size=32)]

    def _root(self) -> Path:
        return Path(self.root).expanduser()

    def _has_masks(self) -> bool:
        return (self._root() / "BBox_List_2017.csv").is_file()

    def info(self) -> DatasetInfo:
        """Describe the dataset: 1-channel images, 14 findings, masks when boxes exist."""
        return DatasetInfo(
            modality=Modality.IMAGE,
            task=Task.MULTILABEL,
            class_names=self.class_names,
            provides=frozenset({Provides.MASKS}) if self._has_masks() else frozenset(),
            channels=1,
            image_size=(self.image_size, self.image_size),
        )

    def _finding(self, name: str, where: str, column: str) -> int:
        name = _ALIASES.get(name.strip(), name.strip())
        if name not in FINDINGS:
            raise DataError(
                f"{where}: column {column!r} holds unknown finding {name!r} - expected one of "
                f"the 14 ChestX-ray14 findings or 'No Finding'.{did_you_mean(name, FINDINGS)}"
            )
        return FINDINGS.index(name)

    def _box_frame(self, stored: tuple[int, int]) -> tuple[int, int]:
        """Return the (width, height) frame of the boxes: ``box_frame`` square, else ``stored``."""
        return stored if self.box_frame is None else (self.box_frame, self.box_frame)

    def _boxes(self, root: Path) -> dict[str, list[tuple[int, float, float, float, float]]]:
        path = root / "BBox_List_2017.csv"
        if not path.is_file():
            return {}
        frame = _files.read_csv(path, ["Image Index", "Finding Label", *_BOX_COLUMNS])
        out: dict[str, list[tuple[int, float, float, float, float]]] = {}
        for row, values in enumerate(
            frame[["Image Index", "Finding Label", *_BOX_COLUMNS]].itertuples(index=False)
        ):
            where = f"{path} line {_files.csv_line(row)}"
            label = self._finding(str(values[1]), where, "Finding Label")
            try:
                x, y, w, h = (float(v) for v in values[2:])
            except ValueError as exc:
                raise DataError(
                    f"{where}: box {list(values[2:])} - expected four numbers x, y, w, h."
                ) from exc
            if w <= 0 or h <= 0:
                raise DataError(
                    f"{where}: box {[x, y, w, h]} - expected a positive width and height."
                )
            out.setdefault(str(values[0]).strip().lower(), []).append((label, x, y, w, h))
        return out

    def _image_paths(self, root: Path) -> dict[str, Path]:
        folders = [
            root / "images",
            *sorted(root.glob("images_*/images")),
            *sorted(root.glob("images_*")),
        ]
        found: dict[str, Path] = {}
        for folder in folders:
            if folder.is_dir():
                for path in _files.visible_images(folder):
                    found.setdefault(path.name.lower(), path)
        return found

    def _build_index(self) -> Index:
        root = self._root()
        entries = sorted(root.glob("Data_Entry_2017*.csv")) if root.is_dir() else []
        if not entries:
            raise DataError(
                f"{root}: no Data_Entry_2017*.csv - expected the ChestX-ray14 label file "
                "in this folder."
            )
        csv_path = entries[-1]
        frame = _files.read_csv(csv_path, ["Image Index", "Finding Labels"])
        if self.max_rows is not None:
            frame = frame.iloc[: self.max_rows]
        boxes = self._boxes(root)
        images = self._image_paths(root)
        has_ids = "Patient ID" in frame.columns
        if not has_ids:
            log.warning(
                "%s: no 'Patient ID' column - taking each patient from the NNNNNNNN_ prefix "
                "of the image name (an image without one is its own patient).",
                csv_path,
            )
        records: dict[str, Record] = {}
        patients: dict[str, str] = {}
        for row, item in enumerate(frame.to_dict("records")):
            record = self._record(item, f"{csv_path} line {_files.csv_line(row)}", images, boxes)
            if record is None:
                continue
            name = str(item["Image Index"]).strip()
            records[name] = record
            patient = str(item["Patient ID"]).strip() if has_ids else ""
            patients[name] = patient or _patient_of(name)
        return Index(records=records, splits=self._splits(root, records, patients))

    def _record(
        self,
        item: dict[str, Any],
        where: str,
        images: dict[str, Path],
        boxes: dict[str, list[tuple[int, float, float, float, float]]],
    ) -> Record | None:
        name = str(item["Image Index"]).strip()
        key = name.lower()
        if self.boxed_only and key not in boxes:
            return None
        label = torch.zeros(len(FINDINGS), dtype=torch.long)
        text = str(item["Finding Labels"]).strip()
        if not text:
            raise DataError(
                f"{where}: column 'Finding Labels' is blank - expected findings or 'No Finding'."
            )
        if text != "No Finding":
            for finding in text.split("|"):
                label[self._finding(finding, where, "Finding Labels")] = 1
        path = images.get(key, self._root() / "images" / name)  # missing: fails when loaded
        return Record(path=path, label=label, where=where, boxes=tuple(boxes.get(key, ())))

    def _splits(
        self, root: Path, records: dict[str, Record], patients: dict[str, str]
    ) -> dict[str, list[str]]:
        test_list = root / "test_list.txt"
        names = list(records)
        if test_list.is_file():
            listed = {line.strip() for line in test_list.read_text().splitlines() if line.strip()}
            test = {n for n in names if n in listed}
        else:
            held = _files.seeded_split([patients[n] for n in names], self.test_fraction, self.seed)
            test = {n for n in names if patients[n] in held}
        rest = [n for n in names if n not in test]
        val_patients = _files.seeded_split(
            [patients[n] for n in rest], self.val_fraction, self.seed + 1
        )
        return {
            "train": [n for n in rest if patients[n] not in val_patients],
            "val": [n for n in rest if patients[n] in val_patients],
            "test": [n for n in names if n in test],
        }


def _patient_of(name: str) -> str:
    """Return the patient of an NIH image name: its ``NNNNNNNN_`` prefix, else the name."""
    match = _PATIENT_PREFIX.match(name)
    return match.group(1) if match else name
