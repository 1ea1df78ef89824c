from __future__ import annotations

import csv
import logging

import numpy as np
import pytest
import torch
from harness_builtins.datasets import _fixtures
from harness_builtins.datasets._files import boxes_to_masks
from harness_builtins.datasets.nih_chestxray14 import FINDINGS, NIHChestXray14

from harness.contracts import Provides
from harness.errors import DataError, PluginError


@pytest.fixture
def root(tmp_path):
    return _fixtures.write_nih(tmp_path / "nih")


def _rewrite(path, row, column, value):
    with path.open() as handle:
        rows = list(csv.reader(handle))
    rows[row][column] = value
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)


def _ids(n=8):
    return [f"{i:08d}_000.png" for i in range(n)]


def test_labels_from_pipe_separated_findings(root):
    batch = NIHChestXray14(root=str(root), image_size=16).load(_ids())
    for row, text in enumerate(_fixtures.NIH_FIXTURE_LABELS):
        expected = torch.zeros(14, dtype=torch.long)
        if text != "No Finding":
            for name in text.split("|"):
                expected[FINDINGS.index(name)] = 1
        assert torch.equal(batch.labels[row], expected), text
    assert batch.labels[0].sum() == 0 and batch.labels[4].sum() == 3


def _box(rows, cols):
    mask = torch.zeros(16, 16, dtype=torch.bool)
    mask[rows[0] : rows[1] + 1, cols[0] : cols[1] + 1] = True
    return mask


def test_boxes_become_masks_hand_checked(root):
    # stored images are 64 x 64 shown at 16 x 16: a pixel is 4 stored px; the CSV's
    # OriginalImage size (2500+ x 2048) is the pre-downscaling size and must not be used
    ds = NIHChestXray14(root=str(root), image_size=16)
    assert Provides.MASKS in ds.info().provides
    batch = ds.load(_ids())
    masks = batch.masks
    assert masks.shape == (8, 14, 16, 16)
    effusion = FINDINGS.index("Effusion")
    # box x, y 16..48: centres (j + 0.5) * 4 in [16, 48] -> j 4..11
    assert torch.equal(masks[2, effusion], _box((4, 11), (4, 11)))
    assert torch.equal(masks[4, FINDINGS.index("Atelectasis")], _box((0, 1), (0, 1)))
    assert torch.equal(masks[4, FINDINGS.index("Nodule")], _box((12, 15), (12, 15)))
    assert int(masks.sum()) == 64 + 4 + 16
    assert not masks[[0, 1, 3, 5, 6, 7]].any()


def test_masks_same_without_original_image_columns(root):
    entry = root / "Data_Entry_2017_v2020.csv"
    with entry.open() as handle:
        rows = [r[:7] for r in csv.reader(handle)]
    with entry.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    masks = NIHChestXray14(root=str(root), image_size=16).load(["00000002_000.png"]).masks
    assert torch.equal(masks[0, FINDINGS.index("Effusion")], _box((4, 11), (4, 11)))


def _entry(root, names, original=(2992, 2520), patient_ids=True):
    header = ["Image Index", "Finding Labels", "OriginalImage[Width", "Height]"]
    rows = [[n, "Mass", *original] for n in names]
    if patient_ids:
        header.append("Patient ID")
        rows = [[*r, str(int(n[:8]))] for r, n in zip(rows, names, strict=True)]
    _fixtures._write_csv(root / "Data_Entry_2017.csv", header, rows)


def test_box_lands_on_the_drawn_rectangle_after_resizing(tmp_path):
    # a 128 x 128 stored PNG (a copy of a 1024 px NIH image) with a bright square at the box;
    # the CSV's original size is larger and non-square, as in the release
    from PIL import Image

    root = tmp_path / "nih"
    pixels = np.zeros((128, 128), np.uint8)
    pixels[64:128, 32:96] = 255
    (root / "images").mkdir(parents=True)
    Image.fromarray(pixels).save(root / "images" / "00000001_000.png")
    _entry(root, ["00000001_000.png"])
    (root / "BBox_List_2017.csv").write_text(
        "Image Index,Finding Label,Bbox [x,y,w,h],,,\n00000001_000.png,Mass,32,64,64,64,,,\n"
    )
    expected = torch.zeros(32, 32, dtype=torch.bool)
    expected[16:32, 8:24] = True
    # the box in the stored image's own pixels (box_frame=None) ...
    ds = NIHChestXray14(
        root=str(root), image_size=32, val_fraction=0.0, test_fraction=0.0, box_frame=None
    )
    batch = ds.load(["00000001_000.png"])
    assert torch.equal(batch.masks[0, FINDINGS.index("Mass")], expected)
    image = batch.images[0, 0]
    assert torch.equal(image > (image.max() + image.min()) / 2, expected)
    # ... and, by default, in NIH's 1024 frame, of which this 128 px copy is a resized one
    (root / "BBox_List_2017.csv").write_text(
        "Image Index,Finding Label,Bbox [x,y,w,h],,,\n00000001_000.png,Mass,256,512,512,512,,,\n"
    )
    ds = NIHChestXray14(root=str(root), image_size=32, val_fraction=0.0, test_fraction=0.0)
    assert torch.equal(ds.load(["00000001_000.png"]).masks[0, FINDINGS.index("Mass")], expected)


def test_patient_from_file_name_when_no_patient_id_column(tmp_path, caplog):
    root = tmp_path / "nih"
    names = [f"{p:08d}_{k:03d}.png" for p in range(1, 9) for k in range(3)]
    for i, name in enumerate(names):
        _fixtures.write_image(root / "images" / name, 16, 16, seed=i)
    _entry(root, names, patient_ids=False)
    for seed in range(4):
        with caplog.at_level(logging.WARNING):
            splits = NIHChestXray14(root=str(root), seed=seed, val_fraction=0.25).splits()
        owners = [{n[:8] for n in splits[k]} for k in ("train", "val", "test")]
        assert all(owners), splits
        assert not owners[0] & owners[1] and not owners[0] & owners[2] and not owners[1] & owners[2]
    assert "no 'Patient ID' column" in caplog.text and "prefix" in caplog.text


def test_names_matched_case_insensitively_and_hidden_files_skipped(root):
    images = root / "images"
    (images / "00000002_000.png").rename(images / "00000002_000.PNG")
    (images / "._00000003_000.png").write_bytes(b"\0\5\26\7")
    (root / "images_001" / "images").mkdir(parents=True)
    (images / "00000003_000.png").rename(root / "images_001" / "images" / "00000003_000.png")
    ds = NIHChestXray14(root=str(root), image_size=16)
    batch = ds.load(["00000002_000.png", "00000003_000.png"])
    assert torch.equal(batch.masks[0, FINDINGS.index("Effusion")], _box((4, 11), (4, 11)))
    assert batch.images.shape == (2, 1, 16, 16)


def test_check_params_refuses_a_missing_root(root, tmp_path):
    NIHChestXray14(root=str(root)).check_params()
    with pytest.raises(PluginError, match=r"parameter root - expected an existing .*nowhere"):
        NIHChestXray14(root=str(tmp_path / "nowhere")).check_params()


def test_boxes_to_masks_non_square_direct():
    masks = boxes_to_masks([(1, 10.0, 0.0, 10.0, 100.0)], (100, 100), 2, 10)
    assert not masks[0].any()
    assert torch.equal(masks[1], _box((0, 9), (1, 1))[:10, :10])


def test_no_bbox_file_means_no_masks(tmp_path):
    root = _fixtures.write_nih(tmp_path / "plain", with_boxes=False)
    ds = NIHChestXray14(root=str(root))
    assert ds.info().provides == frozenset()
    assert ds.load(_ids(2)).masks is None


def test_split_lists_and_seeded_patient_split(root, tmp_path):
    splits = NIHChestXray14(root=str(root), val_fraction=0.2).splits()
    assert sorted(splits["test"]) == ["00000006_000.png", "00000007_000.png"]
    assert len(splits["train"]) + len(splits["val"]) == 6 and splits["val"]
    plain = _fixtures.write_nih(tmp_path / "plain", with_lists=False)
    a = NIHChestXray14(root=str(plain), seed=4).splits()
    assert a == NIHChestXray14(root=str(plain), seed=4).splits()
    ids = [i for v in a.values() for i in v]
    assert len(ids) == len(set(ids)) == 8 and a["test"]


def test_boxed_only_and_alias(root):
    _rewrite(root / "BBox_List_2017.csv", 1, 1, "Infiltrate")
    ds = NIHChestXray14(root=str(root), boxed_only=True, image_size=16)
    ids = sorted(i for v in ds.splits().values() for i in v)
    assert ids == ["00000002_000.png", "00000004_000.png"]
    masks = ds.load(["00000002_000.png"]).masks
    assert masks[0, FINDINGS.index("Infiltration")].any()


def test_unknown_finding_names_file_and_line(root):
    _rewrite(root / "Data_Entry_2017_v2020.csv", 3, 1, "Effusion|Pneumonitis")
    with pytest.raises(
        DataError,
        match=r"Data_Entry_2017_v2020.csv line 4: column 'Finding Labels' holds unknown "
        r"finding 'Pneumonitis'.*Did you mean: Pneumonia",
    ):
        NIHChestXray14(root=str(root)).splits()


def test_bad_box_names_file_and_line(root):
    _rewrite(root / "BBox_List_2017.csv", 2, 4, "0")
    with pytest.raises(
        DataError, match=r"BBox_List_2017.csv line 3: box .* expected a positive width and height"
    ):
        NIHChestXray14(root=str(root)).splits()
    _rewrite(root / "BBox_List_2017.csv", 2, 4, "wide")
    with pytest.raises(DataError, match=r"BBox_List_2017.csv line 3: box .* expected four numbers"):
        NIHChestXray14(root=str(root)).splits()


def test_missing_files(root, tmp_path):
    (root / "images" / "00000003_000.png").unlink()
    with pytest.raises(DataError, match=r"00000003_000.png: image file not found \(.*line 5\)"):
        NIHChestXray14(root=str(root)).load(["00000003_000.png"])
    with pytest.raises(DataError, match=r"no Data_Entry_2017\*.csv"):
        NIHChestXray14(root=str(tmp_path)).splits()
    (root / "Data_Entry_2017_v2020.csv").write_text("Image Index,Labels\na.png,x\n")
    with pytest.raises(DataError, match=r"missing column 'Finding Labels'"):
        NIHChestXray14(root=str(root)).splits()


def test_rgba_image_is_read_as_grayscale(root):
    batch = NIHChestXray14(root=str(root), image_size=16).load(["00000005_000.png"])
    assert batch.images.shape == (1, 1, 16, 16)
