from __future__ import annotations

import pytest
import torch
from harness_builtins.datasets import _synthetic_common as common
from harness_builtins.datasets.synthetic_findings import FINDINGS, SyntheticFindings

from harness.contracts import Provides, Task
from harness.errors import DataError


def _all(ds: SyntheticFindings):
    return ds.load([f"findings-{i:05d}" for i in range(ds.n)])


def _anatomy(ds: SyntheticFindings):
    """Redraw the chunk's anatomy exactly as the dataset does (one chunk only)."""
    ((rows, chunk_seed),) = common.chunk_seeds(ds.n, ds.seed)
    gen = torch.Generator().manual_seed(chunk_seed)
    truth = ds._draw_labels(torch.Generator().manual_seed(ds.seed))
    cardio = truth[:, 2] == 1
    normal = 0.95 + 0.1 * torch.rand(rows, generator=gen)
    large = 1.35 + 0.15 * torch.rand(rows, generator=gen)
    return common.draw_anatomy(
        rows,
        ds.image_size,
        gen,
        noise_level=ds.noise_level,
        heart_scale=torch.where(cardio, large, normal),
    )


def test_info_is_multilabel_with_four_findings():
    info = SyntheticFindings().info()
    assert info.task is Task.MULTILABEL
    assert info.class_names == FINDINGS == ("opacity", "effusion", "cardiomegaly", "nodule")
    assert info.provides == frozenset({Provides.MASKS})


def test_deterministic_by_seed():
    a, b = _all(SyntheticFindings(n=30, seed=4)), _all(SyntheticFindings(n=30, seed=4))
    c = _all(SyntheticFindings(n=30, seed=5))
    assert torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks)
    assert torch.equal(a.labels, b.labels)
    assert not torch.equal(a.images, c.images)


def test_labels_and_masks_agree_and_findings_are_independent():
    batch = _all(SyntheticFindings(n=200, seed=1, prevalence=0.5))
    assert batch.labels.shape == (200, 4) and batch.labels.dtype == torch.int64
    assert set(batch.labels.unique().tolist()) == {0, 1}
    has_mask = batch.masks.flatten(2).any(2)
    assert torch.equal(has_mask, batch.labels == 1)
    rate = batch.labels.float().mean(0)
    assert ((rate - 0.5).abs() < 0.1).all()
    corr = torch.corrcoef(batch.labels.T.float())
    assert (corr - torch.eye(4)).abs().max() < 0.2


def test_masks_lie_where_each_finding_belongs():
    ds = SyntheticFindings(n=60, seed=3, prevalence=0.6)
    batch = _all(ds)
    anatomy = _anatomy(ds)
    opacity, effusion, heart, nodule = batch.masks.unbind(1)
    assert not (opacity & ~anatomy.lungs).any() and not (nodule & ~anatomy.lungs).any()
    assert not (effusion & ~anatomy.costophrenic).any()
    assert torch.equal(heart, anatomy.heart & (batch.labels[:, 2] == 1)[:, None, None])
    # an effusion sits on one side only, in the lower part of the image
    ys = torch.arange(64.0)[None, :, None].expand_as(effusion)
    xs = torch.arange(64.0)[None, None, :].expand_as(effusion)
    rows = effusion.flatten(1).any(1)
    left = (effusion & (xs < 32)).flatten(1).any(1)
    right = (effusion & (xs >= 32)).flatten(1).any(1)
    assert not (left & right).any()
    assert (ys[effusion] > 32).all() and rows.any()
    # nodules are small, opacities large
    area = batch.masks.flatten(2).sum(2).float()
    assert area[:, 3][batch.labels[:, 3] == 1].max() < area[:, 0][batch.labels[:, 0] == 1].median()


def test_cardiomegaly_enlarges_the_heart():
    ds = SyntheticFindings(n=80, seed=6)
    batch = _all(ds)
    heart_area = _anatomy(ds).heart.flatten(1).sum(1).float()
    cardio = batch.labels[:, 2] == 1
    assert heart_area[cardio].min() > heart_area[~cardio].max()


def test_uncertain_and_missing_fractions():
    ds = SyntheticFindings(n=250, seed=2, uncertain_fraction=0.2, missing_fraction=0.1)
    batch = _all(ds)
    truth = _all(SyntheticFindings(n=250, seed=2))
    counts = {v: float((batch.labels == v).float().mean()) for v in (-2, -1)}
    assert abs(counts[-1] - 0.2) < 0.04 and abs(counts[-2] - 0.1) < 0.03
    known = batch.labels >= 0
    assert torch.equal(batch.labels[known], truth.labels[known])
    assert torch.equal(batch.masks, truth.masks) and torch.equal(batch.images, truth.images)


def test_splits_disjoint_complete_and_stable():
    ds = SyntheticFindings(n=50, seed=9)
    splits = ds.splits()
    ids = [i for s in splits.values() for i in s]
    assert len(ids) == len(set(ids)) == 50
    assert SyntheticFindings(n=50, seed=9).splits() == splits


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"prevalence": -0.1}, "prevalence"),
        ({"uncertain_fraction": 2.0}, "uncertain_fraction"),
        ({"uncertain_fraction": 0.6, "missing_fraction": 0.6}, "missing_fraction"),
    ],
)
def test_bad_parameters_raise(params, name):
    with pytest.raises(DataError, match=f"parameter {name} - expected"):
        SyntheticFindings(**params).splits()


def test_conformance_instances_include_uncertain_and_missing(tmp_path):
    instances = SyntheticFindings.conformance_instances(tmp_path)
    labels = torch.cat([_all(i).labels for i in instances])
    assert {-2, -1, 0, 1} <= set(labels.unique().tolist())
