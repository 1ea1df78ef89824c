from __future__ import annotations

import csv

import pytest
import torch
from harness_builtins.datasets import _fixtures
from harness_builtins.datasets._files import boxes_to_masks
from harness_builtins.datasets.nih_chestxray14 import FINDINGS, NIHChestXray14

from harness.contracts import Provides
from harness.errors import DataError


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
    # images are 64 x 48 (w x h) shown at 16 x 16: a pixel is 4 original px wide, 3 high
    ds = NIHChestXray14(root=str(root), image_size=16)
    assert Provides.MASKS in ds.info().provides
    batch = ds.load(_ids())
    masks = batch.masks
    assert masks.shape == (8, 14, 16, 16)
    effusion = FINDINGS.index("Effusion")
    # box x 16..48, y 12..36: centres (j + 0.5) * 4 in [16, 48] -> j 4..11;
    # (i + 0.5) * 3 in [12, 36] -> i 4..11
    assert torch.equal(masks[2, effusion], _box((4, 11), (4, 11)))
    assert torch.equal(masks[4, FINDINGS.index("Atelectasis")], _box((0, 1), (0, 1)))
    assert torch.equal(masks[4, FINDINGS.index("Nodule")], _box((12, 15), (12, 15)))
    assert int(masks.sum()) == 64 + 4 + 16
    assert not masks[[0, 1, 3, 5, 6, 7]].any()


def test_original_size_read_from_image_when_csv_lacks_it(root):
    entry = root / "Data_Entry_2017_v2020.csv"
    with entry.open() as handle:
        rows = [r[:7] for r in csv.reader(handle)]
    with entry.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    masks = NIHChestXray14(root=str(root), image_size=16).load(["00000002_000.png"]).masks
    assert torch.equal(masks[0, FINDINGS.index("Effusion")], _box((4, 11), (4, 11)))


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
