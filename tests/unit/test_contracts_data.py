"""Data carriers: Batch collate / concat / index / to / target masks, Attribution index."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from harness import Attribution, Batch, Sample


def _sample(i: int, *, with_mask: bool = True, text: str | None = "t") -> Sample:
    return Sample(
        id=f"s{i}",
        label=torch.tensor(i % 2),
        image=torch.full((1, 2, 3), float(i)),
        mask=torch.zeros(2, 2, 3, dtype=torch.bool).index_fill_(0, torch.tensor([i % 2]), True)
        if with_mask
        else None,
        text=None if text is None else f"{text}{i}",
        references=(f"ref {i}",),
    )


def test_collate_stacks_present_fields_and_drops_partial_ones():
    batch = Batch.collate([_sample(0), _sample(1, text=None), _sample(2)])
    assert batch.ids == ("s0", "s1", "s2")
    assert batch.labels.tolist() == [0, 1, 0]
    assert batch.images is not None and batch.images.shape == (3, 1, 2, 3)
    assert batch.images[:, 0, 0, 0].tolist() == [0.0, 1.0, 2.0]
    assert batch.masks is not None and batch.masks.shape == (3, 2, 2, 3)
    assert batch.texts is None  # one sample lacks a text
    assert batch.tokens is None and batch.rationales is None
    assert batch.references == (("ref 0",), ("ref 1",), ("ref 2",))
    assert len(batch) == 3


def test_concat_joins_rows_and_keeps_missing_fields_missing():
    a = Batch.collate([_sample(0), _sample(1)])
    b = Batch.collate([_sample(2, with_mask=False)])
    joined = Batch.concat([a, b])
    assert joined.ids == ("s0", "s1", "s2")
    assert joined.images is not None and joined.images[:, 0, 0, 0].tolist() == [0.0, 1.0, 2.0]
    assert joined.masks is None  # b has none
    assert joined.texts == ("t0", "t1", "t2")


def test_index_selects_and_repeats_rows_in_every_field():
    batch = Batch.collate([_sample(i) for i in range(3)])
    picked = batch.index([2, 0, 2])
    assert picked.ids == ("s2", "s0", "s2")
    assert picked.labels.tolist() == [0, 0, 0]
    assert picked.images is not None and picked.images[:, 0, 0, 0].tolist() == [2.0, 0.0, 2.0]
    assert picked.texts == ("t2", "t0", "t2")
    assert picked.references == (("ref 2",), ("ref 0",), ("ref 2",))
    same = batch.index(torch.tensor([1]))
    assert same.ids == ("s1",)


def test_repeat_interleave_repeats_each_row_in_place():
    batch = Batch.collate([_sample(0), _sample(1)]).repeat_interleave(3)
    assert batch.ids == ("s0", "s0", "s0", "s1", "s1", "s1")


def test_to_and_with_images_return_new_batches():
    batch = Batch.collate([_sample(0), _sample(1)])
    moved = batch.to("cpu")
    assert moved.images is not None and moved.images.device.type == "cpu"
    replaced = batch.with_images(torch.zeros(2, 1, 2, 3))
    assert replaced.images is not None and float(replaced.images.sum()) == 0.0
    assert batch.images is not None and float(batch.images.sum()) == 6.0  # frozen original
    with pytest.raises(dataclasses.FrozenInstanceError):
        batch.ids = ()  # type: ignore[misc]


def test_target_masks_pick_each_rows_target_class():
    batch = Batch.collate([_sample(0), _sample(1)])
    masks = batch.target_masks(torch.tensor([0, 0]))
    assert masks.shape == (2, 2, 3)
    assert masks[0].all() and not masks[1].any()  # sample 1's mask is in class 1


def test_target_rationales_and_missing_ground_truth():
    rationales = torch.zeros(2, 3, 5, dtype=torch.bool)
    rationales[1, 2, 4] = True
    batch = Batch(ids=("a", "b"), labels=torch.tensor([0, 2]), rationales=rationales)
    picked = batch.target_rationales(torch.tensor([0, 2]))
    assert picked.shape == (2, 5) and picked.sum() == 1 and picked[1, 4]
    with pytest.raises(ValueError, match="no masks"):
        batch.target_masks(torch.tensor([0, 0]))
    with pytest.raises(ValueError, match="no rationales"):
        Batch(ids=("a",), labels=torch.tensor([0])).target_rationales(torch.tensor([0]))


def test_attribution_index_len_and_to():
    attribution = Attribution(
        pixels=torch.arange(3.0)[:, None, None].expand(3, 2, 2),
        tokens=torch.arange(3.0)[:, None].expand(3, 4),
        sentences=("a", "b", "c"),
    )
    assert len(attribution) == 3
    picked = attribution.index([2, 2, 0])
    assert picked.pixels is not None and picked.pixels[:, 0, 0].tolist() == [2.0, 2.0, 0.0]
    assert picked.tokens is not None and picked.tokens[:, 0].tolist() == [2.0, 2.0, 0.0]
    assert picked.sentences == ("c", "c", "a")
    only_sentences = Attribution(sentences=("x", "y")).index(torch.tensor([1]))
    assert only_sentences.sentences == ("y",) and only_sentences.pixels is None
    assert len(Attribution()) == 0
    assert attribution.to("cpu").pixels is not None


def test_target_masks_name_the_row_whose_target_has_no_mask() -> None:
    from harness.errors import DataError

    masks = torch.zeros(2, 3, 4, 4, dtype=torch.bool)
    masks[1, 2, 0, 0] = True
    batch = Batch(ids=("a", "b"), labels=torch.tensor([0, 2]), masks=masks)
    assert bool(batch.target_masks(torch.tensor([0, 2]))[1, 0, 0])
    with pytest.raises(
        DataError, match=r"batch row 'b': target 3 - expected a class index in \[0, 3\)"
    ):
        batch.target_masks(torch.tensor([0, 3]))
    with pytest.raises(DataError, match="batch row 'a': target -1"):
        batch.target_masks(torch.tensor([-1, 0]))
