"""Toy radiology reports, alone (text, multi-label) and with their radiograph (image + text)."""

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
from harness.testing._toy_base import FIXTURE_CITATION, ToyDataset, pad
from harness.testing._toy_images import FINDINGS, chest_sample

REPORT_VOCAB: tuple[str, ...] = (
    "<pad>", ".", "no", "possible", "present", "the", "heart", "is", "normal", *FINDINGS,
)  # fmt: skip
_ID = {w: i for i, w in enumerate(REPORT_VOCAB)}


def report(states: Tensor, seq_len: int) -> tuple[Tensor, Tensor, str]:
    """Write the report of CheXpert ``states``: (tokens (L,), rationales (K, L), text).

    State 1 reads "opacity present", 0 "no opacity", -1 "possible opacity";
    a missing (-2) finding is not mentioned. Each finding's rationale marks
    the words of its mention.
    """
    words: list[str] = []
    owner: list[int] = []
    for k, state in enumerate(states.tolist()):
        phrase = {1: [FINDINGS[k], "present"], 0: ["no", FINDINGS[k]]}.get(
            state, ["possible", FINDINGS[k]] if state == UNCERTAIN else []
        )
        if state != MISSING:
            words += [*phrase, "."]
            owner += [k] * len(phrase) + [-1]
    words += ["the", "heart", "is", "normal", "."]
    owner += [-1] * 5
    tokens = pad([_ID[w] for w in words], seq_len)
    who = pad([o + 1 for o in owner], seq_len) - 1
    rationales = torch.stack([who == k for k in range(len(FINDINGS))])
    return tokens, rationales, " ".join(words)


class ToyReports(ToyDataset):
    """Toy radiology reports with multi-label CheXpert states and token rationales.

    The report-only view of :class:`ToyImageReport` (same states for the same
    parameters), for unimodal text baselines as in paper 003.

    Parameters
    ----------
    n : int
        Number of samples (split 50 / 25 / 25 into train / val / test).
    seq_len : int
        Tokens per report (25 = a 5 x 5 text-as-image grid).
    seed : int
        Seed of the generator; equal seeds give equal data.
    """

    name: ClassVar[str] = "toy.reports"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = FIXTURE_CITATION
    tags: ClassVar[DatasetTags] = DatasetTags(
        modality=Modality.TEXT, task=Task.MULTILABEL, provides=frozenset({Provides.RATIONALES})
    )
    prefix: ClassVar[str] = "report"

    def __init__(self, *, n: int = 32, seq_len: int = 25, seed: int = 0) -> None:
        self.n = n
        self.seq_len = seq_len
        self.seed = seed

    def info(self) -> DatasetInfo:
        """Describe the dataset: report tokens, three findings, token rationales."""
        return self._info(FINDINGS, vocab_size=len(REPORT_VOCAB), seq_len=self.seq_len)

    def _get(self, sample_id: str) -> Sample:
        _, states, _ = chest_sample(16, self._generator(self._index(sample_id)))
        tokens, rationales, text = report(states, self.seq_len)
        return Sample(id=sample_id, label=states, tokens=tokens, rationale=rationales, text=text)


class ToyImageReport(ToyDataset):
    """Toy radiographs with their reports (paper 003): images, tokens and texts, multi-label.

    Provides a pixel mask per finding and a token rationale per finding.

    Parameters
    ----------
    n : int
        Number of samples (split 50 / 25 / 25 into train / val / test).
    size : int
        Image height and width in pixels.
    seq_len : int
        Tokens per report.
    seed : int
        Seed of the generator; equal seeds give equal data.
    """

    name: ClassVar[str] = "toy.image_report"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = FIXTURE_CITATION
    tags: ClassVar[DatasetTags] = DatasetTags(
        modality=Modality.IMAGE_TEXT,
        task=Task.MULTILABEL,
        provides=frozenset({Provides.MASKS, Provides.RATIONALES}),
    )
    prefix: ClassVar[str] = "study"

    def __init__(self, *, n: int = 32, size: int = 32, seq_len: int = 25, seed: int = 0) -> None:
        self.n = n
        self.size = size
        self.seq_len = seq_len
        self.seed = seed

    def info(self) -> DatasetInfo:
        """Describe the dataset: grayscale images plus report tokens, three findings."""
        return self._info(
            FINDINGS,
            channels=1,
            image_size=(self.size, self.size),
            vocab_size=len(REPORT_VOCAB),
            seq_len=self.seq_len,
        )

    def _get(self, sample_id: str) -> Sample:
        image, states, masks = chest_sample(self.size, self._generator(self._index(sample_id)))
        tokens, rationales, text = report(states, self.seq_len)
        return Sample(
            id=sample_id,
            label=states,
            image=image,
            tokens=tokens,
            mask=masks,
            rationale=rationales,
            text=text,
        )
