from __future__ import annotations

import shutil

import pytest
import torch
from harness_builtins.datasets import _fixtures
from harness_builtins.datasets.kermany_pneumonia import KermanyPneumonia

from harness.contracts import Task
from harness.errors import DataError


@pytest.fixture
def root(tmp_path):
    return _fixtures.write_kermany(tmp_path / "chest_xray", per_class=3)


def test_reads_layout_labels_and_splits(root):
    ds = KermanyPneumonia(root=str(root), image_size=24)
    splits = ds.splits()
    assert {k: len(v) for k, v in splits.items()} == {"train": 6, "val": 6, "test": 6}
    assert "train/NORMAL/person0_normal.jpeg" in splits["train"]
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
    assert a == b and len(a["val"]) == 2 and len(a["train"]) == 4
    assert not set(a["val"]) & set(a["train"])
    assert all(i.startswith("train/") for i in a["val"])


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
