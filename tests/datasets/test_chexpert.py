from __future__ import annotations

import csv

import pytest
import torch
from harness_builtins.datasets import _fixtures
from harness_builtins.datasets.chexpert import OBSERVATIONS, CheXpert

from harness.contracts import Task
from harness.errors import DataError

STATE = {"1.0": 1, "0.0": 0, "-1.0": -1, "": -2}


@pytest.fixture
def root(tmp_path):
    return _fixtures.write_chexpert(tmp_path, n_train=10, n_valid=4)


def _rewrite(path, row, column, value):
    with path.open() as handle:
        rows = list(csv.reader(handle))
    rows[row][rows[0].index(column)] = value
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)


def _expected(i, policy):
    values = [STATE[_fixtures.chexpert_value(i, j)] for j in range(len(OBSERVATIONS))]
    swap = {"ignore": -1, "ones": 1, "zeros": 0}[policy]
    return torch.tensor([swap if v == -1 else v for v in values])


@pytest.mark.parametrize("policy", ["ignore", "ones", "zeros"])
def test_labels_follow_csv_and_uncertainty_policy(root, policy):
    ds = CheXpert(root=str(root), uncertainty=policy, image_size=16)
    ids = [
        f"CheXpert-v1.0-small/train/patient{i // 2:05d}/study1/view{i % 2 + 1}_frontal.jpg"
        for i in range(10)
    ]
    batch = ds.load(ids)
    expected = torch.stack([_expected(i, policy) for i in range(10)])
    assert torch.equal(batch.labels, expected)
    assert (batch.labels == -2).any()
    assert ((batch.labels == -1).any()) == (policy == "ignore")
    assert batch.images.shape == (10, 1, 16, 16)
    assert ds.info().task is Task.MULTILABEL and ds.info().class_names == OBSERVATIONS


def test_splits_test_is_valid_csv_and_val_holds_whole_patients(root):
    ds = CheXpert(root=str(root), val_fraction=0.4, seed=3)
    splits = ds.splits()
    assert len(splits["test"]) == 4 and all("/valid/" in i for i in splits["test"])
    assert len(splits["train"]) + len(splits["val"]) == 10 and splits["val"]
    patients = lambda ids: {i.split("/")[2] for i in ids}  # noqa: E731
    assert not patients(splits["train"]) & patients(splits["val"])
    assert CheXpert(root=str(root), val_fraction=0.4, seed=3).splits() == splits


def test_paths_relative_to_root_also_work(root):
    _rewrite(root / "train.csv", 1, "Path", "train/patient00000/study1/view1_frontal.jpg")
    ds = CheXpert(root=str(root))
    batch = ds.load(["train/patient00000/study1/view1_frontal.jpg"])
    assert batch.images.shape[0] == 1


def test_label_outside_allowed_values_names_file_line_and_column(root):
    _rewrite(root / "train.csv", 3, "Edema", "2.0")
    with pytest.raises(
        DataError,
        match=r"train.csv line 4: column 'Edema' holds '2.0' - expected 1.0, 0.0, -1.0 or blank",
    ):
        CheXpert(root=str(root)).splits()


def test_missing_column_suggests_names(root):
    _rewrite(root / "valid.csv", 0, "Pleural Effusion", "Pleural Efusion")
    with pytest.raises(
        DataError,
        match=r"valid.csv: missing column 'Pleural Effusion'.*Did you mean: Pleural Efusion",
    ):
        CheXpert(root=str(root)).splits()


def test_missing_image_names_file_and_line(root):
    target = root / "train" / "patient00001" / "study1" / "view1_frontal.jpg"
    target.unlink()
    ds = CheXpert(root=str(root))
    with pytest.raises(
        DataError, match=r"view1_frontal.jpg: image file not found \(.*train.csv line 4\)"
    ):
        ds.load(["CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg"])


def test_missing_csv_and_bad_policy(root, tmp_path):
    with pytest.raises(DataError, match=r"nope.csv: CSV file not found"):
        CheXpert(root=str(root), train_csv="nope.csv").splits()
    with pytest.raises(
        DataError, match=r"parameter uncertainty - expected one of \['ignore', 'ones', 'zeros'\]"
    ):
        CheXpert(root=str(root), uncertainty="maybe").splits()
    with pytest.raises(DataError, match=r"folder not found"):
        CheXpert(root=str(tmp_path / "absent")).splits()


def test_max_rows(root):
    splits = CheXpert(root=str(root), max_rows=4, val_fraction=0.0).splits()
    assert len(splits["train"]) == 4 and len(splits["test"]) == 4 and not splits["val"]
