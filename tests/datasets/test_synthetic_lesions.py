from __future__ import annotations

import numpy as np
import pytest
import torch
from harness_builtins.datasets import _synthetic_common as common
from harness_builtins.datasets.synthetic_lesions import SyntheticLesions
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from harness.contracts import Modality, Provides, Task
from harness.errors import DataError


def _all(ds: SyntheticLesions):
    ids = [i for split in ds.splits().values() for i in split]
    return ds.load(sorted(ids))


def test_init_only_stores_parameters():
    ds = SyntheticLesions(n=10, seed=4)
    assert not hasattr(ds, "_generated")
    assert ds.get_params()["n"] == 10
    assert ds.clone().get_params() == ds.get_params()


def test_info_describes_images_classes_and_masks():
    info = SyntheticLesions(image_size=48).info()
    assert info.modality is Modality.IMAGE
    assert info.task is Task.MULTICLASS
    assert info.class_names == ("normal", "opacity")
    assert info.provides == frozenset({Provides.MASKS})
    assert (info.channels, info.image_size) == (1, (48, 48))


def test_same_seed_identical_different_seed_different():
    a, b = _all(SyntheticLesions(n=40, seed=1)), _all(SyntheticLesions(n=40, seed=1))
    c = _all(SyntheticLesions(n=40, seed=2))
    assert torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks)
    assert torch.equal(a.labels, b.labels) and a.ids == b.ids
    assert not torch.equal(a.images, c.images)
    assert not torch.equal(a.masks, c.masks)


def test_shapes_dtypes_and_standardisation():
    batch = _all(SyntheticLesions(n=30, image_size=40))
    assert batch.images.shape == (30, 1, 40, 40) and batch.images.dtype == torch.float32
    assert batch.masks.shape == (30, 2, 40, 40) and batch.masks.dtype == torch.bool
    assert batch.labels.dtype == torch.int64
    flat = batch.images.flatten(1)
    assert flat.mean(1).abs().max() < 1e-4
    assert torch.allclose(flat.std(1), torch.ones(30), atol=1e-4)


def test_masks_match_labels_and_positive_fraction():
    batch = _all(SyntheticLesions(n=50, positive_fraction=0.3))
    assert int(batch.labels.sum()) == 15
    assert not batch.masks[:, 0].any()
    has_lesion = batch.masks[:, 1].flatten(1).any(1)
    assert torch.equal(has_lesion, batch.labels == 1)
    area = batch.masks[:, 1].flatten(1).sum(1)[batch.labels == 1].float()
    low, high = (r * 64 for r in SyntheticLesions().lesion_radius)
    assert area.max() <= torch.pi * (high + 1) ** 2
    assert area.min() >= 0.25 * torch.pi * low**2  # clipped by the lung edge at most by 3/4


def test_lesions_lie_inside_lung_fields():
    ds = SyntheticLesions(n=40, seed=5)
    batch = ds.load([f"lesions-{i:05d}" for i in range(40)])
    ((rows, chunk_seed),) = common.chunk_seeds(40, 5)
    anatomy = common.draw_anatomy(
        rows, 64, torch.Generator().manual_seed(chunk_seed), noise_level=ds.noise_level
    )
    lesion = batch.masks[:, 1]
    assert lesion.any()
    assert not (lesion & ~anatomy.lungs).any()


def test_lesion_changes_only_its_own_pixels():
    ds = SyntheticLesions(n=40, seed=3)
    data = ds._data()
    ((rows, chunk_seed),) = common.chunk_seeds(40, 3)
    normal, _ = ds._render(torch.zeros(rows, dtype=torch.long), chunk_seed)
    pos = data.labels == 1
    diff = (data.images[pos] - normal[pos]).abs()[:, 0]
    mask = data.masks[pos, 1]
    grown = torch.nn.functional.max_pool2d(mask.float()[:, None], 5, 1, 2)[:, 0].bool()
    inside = diff[mask].mean()
    outside = diff[~grown].mean()
    assert inside > 10 * outside
    assert torch.equal(data.images[~pos], normal[~pos])


def test_splits_disjoint_complete_stratified_and_stable():
    ds = SyntheticLesions(n=100, seed=7)
    splits = ds.splits()
    sets = {k: set(v) for k, v in splits.items()}
    assert set(splits) == {"train", "val", "test"}
    assert not (sets["train"] & sets["val"]) and not (sets["train"] & sets["test"])
    assert not (sets["val"] & sets["test"])
    assert len(sets["train"] | sets["val"] | sets["test"]) == 100
    assert [len(splits[k]) for k in ("train", "val", "test")] == [60, 20, 20]
    for name in ("train", "test"):
        labels = ds.load(splits[name]).labels.float()
        assert abs(float(labels.mean()) - 0.5) < 0.06
    assert SyntheticLesions(n=100, seed=7).splits() == splits
    assert all(isinstance(i, str) and i.startswith("lesions-") for i in splits["train"])


def test_no_global_intensity_shortcut():
    batch = _all(SyntheticLesions(n=400, seed=11))
    quantiles = torch.quantile(batch.images.flatten(1), torch.linspace(0, 1, 21), dim=1).T
    features = np.concatenate(
        [quantiles.numpy(), batch.images.flatten(1).mean(1, keepdim=True).numpy()], 1
    )
    acc = cross_val_score(LogisticRegression(max_iter=3000), features, batch.labels.numpy(), cv=5)
    assert acc.mean() < 0.72


def test_unknown_id_raises_data_error():
    ds = SyntheticLesions(n=10)
    with pytest.raises(DataError, match="unknown sample id 'nope'"):
        ds.load(["nope"])


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"n": 2}, "n"),
        ({"image_size": 8}, "image_size"),
        ({"positive_fraction": 1.5}, "positive_fraction"),
        ({"lesion_radius": (0.2, 0.1)}, "lesion_radius"),
        ({"lesion_radius": [0.1]}, "lesion_radius"),
        ({"split_fractions": (0.8, 0.3)}, "split_fractions"),
    ],
)
def test_bad_parameters_raise_data_error(params, name):
    with pytest.raises(DataError, match=f"parameter {name} - expected"):
        SyntheticLesions(**params).splits()


def test_conformance_instances_are_small(tmp_path):
    instances = SyntheticLesions.conformance_instances(tmp_path)
    assert instances and all(isinstance(i, SyntheticLesions) and i.n <= 32 for i in instances)
    batch = instances[0].load(list(instances[0].splits()["test"]))
    assert batch.images.shape[1:] == (1, 32, 32)
