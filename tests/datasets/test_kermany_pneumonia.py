from __future__ import annotations

import shutil

import pytest
import torch
from harness_builtins.datasets import _fixtures
from harness_builtins.datasets.kermany_pneumonia import KermanyPneumonia, patient_of

from harness.contracts import Task
from harness.errors import DataError


@pytest.fixture
def root(tmp_path):
    return _fixtures.write_kermany(tmp_path / "chest_xray", per_class=3)


def test_reads_layout_labels_and_splits(root):
    ds = KermanyPneumonia(root=str(root), image_size=24)
    splits = ds.splits()
    assert {k: len(v) for k, v in splits.items()} == {"train": 6, "val": 6, "test": 6}
    assert "train/NORMAL/IM-0000-0001.jpeg" in splits["train"]
    batch = ds.load(list(splits["test"]))
    assert batch.images.shape == (6, 1, 24, 24) and batch.masks is None
    expected = torch.tensor([0 if "/NORMAL/" in i else 1 for i in batch.ids])
    assert torch.equal(batch.labels, expected)
    assert ds.info().task is Task.MULTICLASS and ds.info().provides == frozenset()
    flat = batch.images.flatten(1)
    assert flat.mean(1).abs().max() < 1e-4


def test_max_per_class(root):
    splits = KermanyPneumonia(root=str(root), max_per_class=1).splits()
    assert all(len(v) == 2 for v in splits.values())


def test_val_carved_from_train_when_absent(root):
    shutil.rmtree(root / "val")
    a = KermanyPneumonia(root=str(root), val_fraction=0.34, seed=1).splits()
    b = KermanyPneumonia(root=str(root), val_fraction=0.34, seed=1).splits()
    # 4 patients (IM-0000 x2, IM-0001, person0 x2, person1): one is held out
    assert a == b and len(a["val"]) in (1, 2) and len(a["train"]) + len(a["val"]) == 6
    assert not set(a["val"]) & set(a["train"])
    assert all(i.startswith("train/") for i in a["val"])


def test_patient_parsed_from_release_file_names():
    assert patient_of("train/PNEUMONIA/person1_bacteria_1.jpeg") == "person1"
    assert patient_of("train/PNEUMONIA/person1_virus_6.jpeg") == "person1"
    assert patient_of("train/NORMAL/IM-0115-0001.jpeg") == "IM-0115"
    assert patient_of("train/NORMAL/NORMAL2-IM-1427-0001.jpeg") == "IM-1427"
    assert patient_of("train/NORMAL/scan.jpeg") == "train/NORMAL/scan.jpeg"


def test_val_carved_by_patient_never_splits_one(tmp_path):
    root = _fixtures.write_kermany(tmp_path / "chest_xray", per_class=8, splits=("train", "test"))
    for seed in range(5):
        splits = KermanyPneumonia(root=str(root), val_fraction=0.3, seed=seed).splits()
        train = {patient_of(i) for i in splits["train"]}
        val = {patient_of(i) for i in splits["val"]}
        assert val and train and not train & val, (seed, splits)


def test_hidden_files_are_skipped(root):
    folder = root / "train" / "PNEUMONIA"
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (folder / "._person0_bacteria_0.jpeg").write_bytes(b"\0\5\26\7" + b"\0" * 60)
    (root / "train" / "._NORMAL").write_bytes(b"\0\5\26\7")
    ds = KermanyPneumonia(root=str(root), image_size=16)
    ids = [i for v in ds.splits().values() for i in v]
    assert len(ids) == 18 and not any("/." in i for i in ids)
    assert ds.load(ids).images.shape == (18, 1, 16, 16)


def test_missing_split_folder(root):
    shutil.rmtree(root / "test")
    with pytest.raises(
        DataError, match=r"chest_xray/test: folder not found - expected the Kermany layout"
    ):
        KermanyPneumonia(root=str(root)).splits()


def test_unknown_class_folder(root):
    (root / "train" / "COVID").mkdir()
    with pytest.raises(
        DataError, match=r"train/COVID: unknown class folder 'COVID' - expected one of"
    ):
        KermanyPneumonia(root=str(root)).splits()


def test_unreadable_image_names_the_file(root):
    bad = root / "test" / "PNEUMONIA" / "zz_broken.jpeg"
    bad.write_bytes(b"not an image")
    ds = KermanyPneumonia(root=str(root))
    with pytest.raises(DataError, match=r"zz_broken.jpeg: cannot read image"):
        ds.load(["test/PNEUMONIA/zz_broken.jpeg"])


def test_rgb_images_become_grayscale(tmp_path):
    root = tmp_path / "rgb"
    for split in ("train", "test"):
        for folder in ("NORMAL", "PNEUMONIA"):
            _fixtures.write_image(root / split / folder / "a.png", 30, 20, seed=1, mode="RGB")
    batch = KermanyPneumonia(root=str(root), image_size=16).load(["train/NORMAL/a.png"])
    assert batch.images.shape == (1, 1, 16, 16)
