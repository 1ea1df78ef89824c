"""Data randomisation (Adebayo et al. 2018): the same model trained on permuted labels.

Only built when a metric declares ``Need.LABEL_RANDOMISED_MODEL``; cached like
any trained checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import ClassVar

import torch

from harness.contracts import Dataset, DatasetInfo, FitContext, Model, Sample
from harness.draws import seed_everything
from harness.pipeline.context import Computed, RunContext, cached, key_seed
from harness.pipeline.training import Trained
from harness.stages import stage_key


class PermutedLabels(Dataset):
    """A view of a dataset whose training labels are permuted among the ``ids`` given."""

    name: ClassVar[str] = "harness.permuted_labels"
    _donor_map: dict[str, str] | None = None

    def __init__(self, *, base: Dataset, ids: Sequence[str] = (), seed: int = 0) -> None:
        self.base = base
        self.ids = ids
        self.seed = seed

    def info(self) -> DatasetInfo:
        """Return the base dataset's info."""
        return self.base.info()

    def splits(self) -> Mapping[str, Sequence[str]]:
        """Return the base dataset's splits."""
        return self.base.splits()

    def _donors(self) -> dict[str, str]:
        if self._donor_map is None:
            ids = list(self.ids)
            perm = torch.randperm(
                len(ids), generator=torch.Generator().manual_seed(self.seed)
            ).tolist()
            self._donor_map = {ids[i]: ids[j] for i, j in enumerate(perm)}
        return self._donor_map

    def _get(self, sample_id: str) -> Sample:
        donor = self._donors().get(sample_id, sample_id)
        sample = self.base._get(sample_id)
        label = self.base._get(donor).label
        return Sample(
            id=sample.id,
            label=label,
            image=sample.image,
            tokens=sample.tokens,
            mask=sample.mask,
            rationale=sample.rationale,
            text=sample.text,
            references=sample.references,
        )


def attach_label_randomised(ctx: RunContext, trained: Trained) -> Model:
    """Train (or load) the model on permuted training labels and attach it to ``trained.model``."""
    if trained.model.label_randomised is not None:
        return trained.model.label_randomised
    info, _ = ctx.plugins.datasets[trained.dkey]
    twin = trained.model.clone()
    key = stage_key("model_label_randomised", twin, [trained.model_key], ctx.spec.seed)
    seed_everything(key_seed(key))
    twin.build(info)
    twin.expected_outputs = info.num_outputs
    ctx.progress.stage(f"training {trained.mkey} on permuted labels")
    permuted = PermutedLabels(base=trained.dataset, ids=trained.splits["train"], seed=key_seed(key))

    def fit() -> Computed:
        steps = partial(ctx.progress.substep, unit="steps")
        twin.fit(permuted, trained.splits["train"], FitContext(ctx.device, ctx.spec.seed, steps))
        return twin.state_dict(), None

    state, _, _ = cached(ctx, key, f"training {trained.mkey} on permuted labels", fit)
    twin.load_state_dict(state)
    twin.to(ctx.device)
    trained.model.label_randomised = twin
    return twin
