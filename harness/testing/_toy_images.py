"""Toy image datasets: RGB skin lesions (multi-class) and chest X-rays (CheXpert states)."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from harness.contracts import (
    MISSING,
    UNCERTAIN,
    DatasetInfo,
    DatasetTags,
    Modality,
    Provides,
    Sample,
    Task,
)
from harness.testing._toy_base import FIXTURE_CITATION, ToyDataset, coords, disc, quadrant, uniform

_SKIN = torch.tensor([0.80, 0.62, 0.52])
_LESION = {0: torch.tensor([0.95, 0.35, 0.30]), 1: torch.tensor([0.30, 0.20, 0.15])}


class ToyLesions(ToyDataset):
    """Toy dermoscopy images: one round lesion per image, bright (class 0) or dark (class 1).

    Each sample carries the lesion's pixel mask at its class index and a
    templated reference sentence naming the lesion's character and quadrant
    (the structure of paper 001's generated explanations).

    Parameters
    ----------
    n : int
        Number of samples (split 50 / 25 / 25 into train / val / test).
    size : int
        Image height and width in pixels.
    seed : int
        Seed of the generator; equal seeds give equal data.
    """

    name: ClassVar[str] = "toy.lesions"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = FIXTURE_CITATION
    tags: ClassVar[DatasetTags] = DatasetTags(
        modality=Modality.IMAGE,
        task=Task.MULTICLASS,
        provides=frozenset({Provides.MASKS, Provides.REFERENCES}),
    )
    prefix: ClassVar[str] = "lesion"
    CLASSES: ClassVar[tuple[str, ...]] = ("bright", "dark")

    def __init__(self, *, n: int = 32, size: int = 32, seed: int = 0) -> None:
        self.n = n
        self.size = size
        self.seed = seed

    def info(self) -> DatasetInfo:
        """Describe the dataset: RGB images, two classes, masks and references."""
        return self._info(self.CLASSES, channels=3, image_size=(self.size, self.size))

    def _get(self, sample_id: str) -> Sample:
        index = self._index(sample_id)
        g = self._generator(index)
        label = index % len(self.CLASSES)
        r = uniform(g, 0.2, 0.35)
        cy, cx = uniform(g, -0.9 + r, 0.9 - r), uniform(g, -0.9 + r, 0.9 - r)
        lesion = disc(self.size, cy, cx, r)
        noise = 0.05 * torch.randn(3, self.size, self.size, generator=g)
        image = torch.where(lesion, _LESION[label][:, None, None], _SKIN[:, None, None]) + noise
        mask = torch.zeros(len(self.CLASSES), self.size, self.size, dtype=torch.bool)
        mask[label] = lesion
        v, h = quadrant(cy, cx)
        sentence = f"There is a {self.CLASSES[label]} lesion in the {v} {h} region."
        return Sample(
            id=sample_id,
            label=torch.tensor(label, dtype=torch.long),
            image=image,
            mask=mask,
            references=(sentence,),
        )


FINDINGS: tuple[str, ...] = ("opacity", "nodule", "effusion")
_STATE_P = torch.tensor([0.4, 0.3, 0.15, 0.15])  # 1, 0, -1 uncertain, -2 missing
_STATES = torch.tensor([1, 0, UNCERTAIN, MISSING])


def chest_sample(size: int, g: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """Draw one toy radiograph: (image (1, H, W), states (K,), masks (K, H, W)).

    The states are drawn first, so they do not depend on ``size``.

    Lungs are two dark ellipses crossed by ribs; a finding is drawn where its
    state is 1 (full contrast), -1 (faint) or, by a coin flip, -2 (unlabelled).
    """
    states = _STATES[torch.multinomial(_STATE_P, len(FINDINGS), replacement=True, generator=g)]
    yy, xx = coords(size)
    lungs = ((xx.abs() - 0.45) / 0.33) ** 2 + (yy / 0.7) ** 2 <= 1.0
    ribs = 0.08 * torch.sin(yy * 12 * torch.pi) * lungs
    image = 0.65 - 0.35 * lungs.float() + ribs + 0.04 * torch.randn(size, size, generator=g)
    masks = torch.zeros(len(FINDINGS), size, size, dtype=torch.bool)
    for k, state in enumerate(states.tolist()):
        drawn = state in (1, UNCERTAIN) or (state == MISSING and uniform(g, 0, 1) < 0.5)
        side = -0.45 if uniform(g, 0, 1) < 0.5 else 0.45
        if not drawn:
            continue
        if FINDINGS[k] == "effusion":
            region = lungs & (yy > 0.3) & ((xx - side).abs() < 0.35)
        else:
            r = 0.22 if FINDINGS[k] == "opacity" else 0.1
            region = disc(size, uniform(g, -0.4, 0.4), side + uniform(g, -0.1, 0.1), r)
        masks[k] = region
        image = image + (0.45 if state == 1 else 0.25) * region.float()
    return image[None], states.long(), masks


class ToyChestXray(ToyDataset):
    """Toy chest radiographs with multi-label findings in the CheXpert states 1 / 0 / -1 / -2.

    Each finding present in the image has its own pixel mask.

    Parameters
    ----------
    n : int
        Number of samples (split 50 / 25 / 25 into train / val / test).
    size : int
        Image height and width in pixels.
    seed : int
        Seed of the generator; equal seeds give equal data.
    """

    name: ClassVar[str] = "toy.chest_xray"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = FIXTURE_CITATION
    tags: ClassVar[DatasetTags] = DatasetTags(
        modality=Modality.IMAGE, task=Task.MULTILABEL, provides=frozenset({Provides.MASKS})
    )
    prefix: ClassVar[str] = "cxr"

    def __init__(self, *, n: int = 32, size: int = 32, seed: int = 0) -> None:
        self.n = n
        self.size = size
        self.seed = seed

    def info(self) -> DatasetInfo:
        """Describe the dataset: grayscale images, three findings, per-finding masks."""
        return self._info(FINDINGS, channels=1, image_size=(self.size, self.size))

    def _get(self, sample_id: str) -> Sample:
        image, states, masks = chest_sample(self.size, self._generator(self._index(sample_id)))
        return Sample(id=sample_id, label=states, image=image, mask=masks)
