"""Toy medical abstracts: token ids for a 25 x 25 text-as-image grid, with token rationales."""

from __future__ import annotations

from typing import ClassVar

import torch

from harness.contracts import DatasetInfo, DatasetTags, Modality, Provides, Sample, Task
from harness.testing._toy_base import FIXTURE_CITATION, ToyDataset, pad

CLASSES: tuple[str, ...] = ("neoplasms", "digestive", "nervous")
KEYWORDS: tuple[tuple[str, ...], ...] = (
    ("tumour", "carcinoma", "malignant", "metastasis"),
    ("colon", "gastric", "liver", "bowel"),
    ("neuron", "brain", "seizure", "cortex"),
)
_BACKGROUND = (
    "patient", "study", "results", "method", "clinical", "treatment", "group", "analysis",
    "data", "effect", "risk", "trial", "cases", "years", "significant", "outcome", "therapy",
    "associated", "increased", "compared",
)  # fmt: skip
VOCAB: tuple[str, ...] = (
    ("<pad>",) + tuple(w for words in KEYWORDS for w in words) + _BACKGROUND
    + tuple(f"term{i}" for i in range(64 - 1 - 12 - len(_BACKGROUND)))
)  # fmt: skip
_FIRST_BACKGROUND = 1 + sum(len(words) for words in KEYWORDS)


def keyword_ids(k: int) -> torch.Tensor:
    """Return the token ids of class ``k``'s keywords."""
    start = 1 + sum(len(words) for words in KEYWORDS[:k])
    return torch.arange(start, start + len(KEYWORDS[k]))


class ToyAbstracts(ToyDataset):
    """Toy abstract classification, laid out for text-as-image models (paper 000).

    Each abstract is ``seq_len`` token ids (0 pads the end; 625 = 25 x 25 by
    default): background words plus 24 keywords of its class. The rationale
    of class ``k`` marks the positions of class ``k``'s keywords (empty for
    the other classes).

    Parameters
    ----------
    n : int
        Number of samples (split 50 / 25 / 25 into train / val / test).
    seq_len : int
        Tokens per abstract, padding included.
    seed : int
        Seed of the generator; equal seeds give equal data.
    """

    name: ClassVar[str] = "toy.abstracts"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = FIXTURE_CITATION
    tags: ClassVar[DatasetTags] = DatasetTags(
        modality=Modality.TEXT, task=Task.MULTICLASS, provides=frozenset({Provides.RATIONALES})
    )
    prefix: ClassVar[str] = "abstract"

    def __init__(self, *, n: int = 32, seq_len: int = 625, seed: int = 0) -> None:
        self.n = n
        self.seq_len = seq_len
        self.seed = seed

    def info(self) -> DatasetInfo:
        """Describe the dataset: token ids, three classes, token rationales."""
        return self._info(CLASSES, vocab_size=len(VOCAB), seq_len=self.seq_len)

    def _get(self, sample_id: str) -> Sample:
        index = self._index(sample_id)
        g = self._generator(index)
        label = index % len(CLASSES)
        length = int(torch.randint(self.seq_len // 2, self.seq_len + 1, (), generator=g))
        words = torch.randint(_FIRST_BACKGROUND, len(VOCAB), (length,), generator=g)
        places = torch.randperm(length, generator=g)[:24]
        own = keyword_ids(label)
        words[places] = own[torch.randint(len(own), (len(places),), generator=g)]
        tokens = pad(words.tolist(), self.seq_len)
        rationale = torch.stack([torch.isin(tokens, keyword_ids(k)) for k in range(len(CLASSES))])
        return Sample(
            id=sample_id,
            label=torch.tensor(label, dtype=torch.long),
            tokens=tokens,
            rationale=rationale,
            text=" ".join(VOCAB[t] for t in words.tolist()),
        )
