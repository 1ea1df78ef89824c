"""Tiny fixture trees in the real formats, for tests and the conformance kit.

Each writer creates a small, deterministic copy of a public dataset's layout
(images written with Pillow) and returns the folder to pass as ``root``.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

CHEXPERT_OBSERVATIONS: tuple[str, ...] = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)
NIH_FINDINGS: tuple[str, ...] = (
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
    "Consolidation",
    "Edema",
    "Emphysema",
    "Fibrosis",
    "Pleural_Thickening",
    "Hernia",
)
NIH_COLUMNS: tuple[str, ...] = (
    "Image Index",
    "Finding Labels",
    "Follow-up #",
    "Patient ID",
    "Patient Age",
    "Patient Gender",
    "View Position",
    "OriginalImage[Width",
    "Height]",
    "OriginalImagePixelSpacing[x",
    "y]",
)


def write_image(path: Path, width: int, height: int, seed: int, mode: str = "L") -> Path:
    """Write a deterministic gradient-plus-noise image of ``width`` x ``height``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 200, width)[None, :] + np.linspace(0, 40, height)[:, None]
    pixels = np.clip(ramp + rng.normal(0, 10, (height, width)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(pixels)
    (image if mode == "L" else image.convert(mode)).save(path)
    return path


def write_kermany(
    root: Path, per_class: int = 3, splits: Sequence[str] = ("train", "val", "test")
) -> Path:
    """Write ``root/{split}/{NORMAL,PNEUMONIA}/*.jpeg`` with ``per_class`` images each.

    File names follow the release: ``IM-NNNN-000k.jpeg`` (normal) and
    ``personN_bacteria_k.jpeg`` (pneumonia), two images per patient.
    """
    seed = 0
    for split in splits:
        for folder in ("NORMAL", "PNEUMONIA"):
            for i in range(per_class):
                seed += 1
                name = (
                    f"IM-{i // 2:04d}-{i % 2 + 1:04d}.jpeg"
                    if folder == "NORMAL"
                    else f"person{i // 2}_bacteria_{i}.jpeg"
                )
                write_image(root / split / folder / name, 48, 40, seed)
    return root


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def chexpert_value(i: int, j: int) -> str:
    """Return the fixture's CSV cell for row ``i``, observation ``j``: 1.0, 0.0, -1.0 or blank."""
    return ("1.0", "0.0", "-1.0", "", "0.0")[(i + 2 * j) % 5]


def write_chexpert(root: Path, n_train: int = 8, n_valid: int = 4) -> Path:
    """Write a ``CheXpert-v1.0-small`` tree (train.csv, valid.csv, JPEGs); return its folder.

    ``Path`` cells start with ``CheXpert-v1.0-small/`` as in the official release.
    Patient ``i // 2`` owns rows ``2i`` and ``2i + 1``.
    """
    base = root / "CheXpert-v1.0-small"
    header = ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", *CHEXPERT_OBSERVATIONS]
    for split, count in (("train", n_train), ("valid", n_valid)):
        rows = []
        for i in range(count):
            rel = f"{split}/patient{i // 2:05d}/study1/view{i % 2 + 1}_frontal.jpg"
            write_image(base / rel, 40, 48, seed=100 + i + (0 if split == "train" else 50))
            cells = [chexpert_value(i, j) for j in range(len(CHEXPERT_OBSERVATIONS))]
            rows.append([f"CheXpert-v1.0-small/{rel}", "Female", "60", "Frontal", "AP", *cells])
        _write_csv(base / f"{split}.csv", header, rows)
    return base


NIH_FIXTURE_LABELS: tuple[str, ...] = (
    "No Finding",
    "Cardiomegaly",
    "Effusion|Infiltration",
    "No Finding",
    "Atelectasis|Effusion|Nodule",
    "Mass",
    "Hernia",
    "Pneumothorax|Edema",
)


def write_nih(root: Path, with_boxes: bool = True, with_lists: bool = True) -> Path:
    """Write a ChestX-ray14 tree: ``images/*.png``, ``Data_Entry_2017_v2020.csv`` and options.

    The stored PNGs are 64 x 64, a copy resized from NIH's 1024 x 1024, while
    ``OriginalImage[Width`` / ``Height]`` give a different, larger
    pre-downscaling size, as in the release; boxes are in the 1024 frame. With
    ``with_boxes`` image 2 has an Effusion box (256, 256, 512, 512) and image 4
    an Atelectasis (0, 0, 128, 128) and a Nodule box (768, 768, 256, 256);
    with ``with_lists`` images 6 and 7 form ``test_list.txt``.
    """
    rows = []
    for i, labels in enumerate(NIH_FIXTURE_LABELS):
        name = f"{i:08d}_000.png"
        write_image(root / "images" / name, 64, 64, seed=200 + i, mode="RGBA" if i == 5 else "L")
        rows.append([name, labels, 0, i, 50, "M", "PA", 2500 + 8 * i, 2048, 0.143, 0.143])
    _write_csv(root / "Data_Entry_2017_v2020.csv", NIH_COLUMNS, rows)
    if with_boxes:
        _write_csv(
            root / "BBox_List_2017.csv",
            ["Image Index", "Finding Label", "Bbox [x", "y", "w", "h]", "", "", ""],
            [
                ["00000002_000.png", "Effusion", 256.0, 256.0, 512.0, 512.0, "", "", ""],
                ["00000004_000.png", "Atelectasis", 0.0, 0.0, 128.0, 128.0, "", "", ""],
                ["00000004_000.png", "Nodule", 768.0, 768.0, 256.0, 256.0, "", "", ""],
            ],
        )
    if with_lists:
        names = [str(r[0]) for r in rows]
        (root / "train_val_list.txt").write_text("\n".join(names[:6]) + "\n")
        (root / "test_list.txt").write_text("\n".join(names[6:]) + "\n")
    return root
