"""Metric contracts: classification, text generation and explanation metrics.

Metrics are stateless. Classification and text-generation metrics are corpus
metrics (``compute`` returns one number; the core bootstraps it by resampling
rows). Explanation metrics return one score per (sample, target) row; the core
aggregates them (mean, bootstrap interval, paired tests) in ``harness.stats``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, final

import numpy as np
import torch
from torch import Tensor

from harness.contracts.component import Component
from harness.contracts.data import Attribution, Batch
from harness.contracts.tags import MetricKind, MetricTags, Task
from harness.contracts.validation import check_scores, require_metric_needs

if TYPE_CHECKING:
    from harness.contracts.explainer import Explainer
    from harness.contracts.model import Model


@dataclass(frozen=True)
class Scores:
    """Per-row scores plus optional detail the store keeps beside them.

    ``curves`` maps a name to a (N, S) or (S,) tensor (e.g. a sanity check's
    per-layer similarity, a deletion curve); ``notes`` maps a name to a scalar
    (e.g. ``run_agreement``: Spearman correlation between two independent runs
    of a stochastic metric).
    """

    values: Tensor
    curves: Mapping[str, Tensor] = field(default_factory=dict)
    notes: Mapping[str, float] = field(default_factory=dict)


class Metric(Component, abc.ABC):
    """Common metadata of every metric: tags, direction and optional bounds."""

    tags: ClassVar[MetricTags] = MetricTags()
    higher_is_better: ClassVar[bool] = True
    bounds: ClassVar[tuple[float, float] | None] = None

    def get_tags(self) -> MetricTags:
        """Return this instance's tags."""
        return self.tags


class ClassificationMetric(Metric, abc.ABC):
    """A metric of predicted probabilities against labels, over the whole split."""

    tags: ClassVar[MetricTags] = MetricTags(kind=MetricKind.CLASSIFICATION)

    @final
    def compute(self, labels: Tensor, probs: Tensor, task: Task) -> float:
        """Score ``probs`` (N, K) against ``labels`` ((N,) or (N, K) CheXpert states)."""
        value = float(self._compute(labels.detach().cpu(), probs.detach().cpu(), task))
        return value

    @abc.abstractmethod
    def _compute(self, labels: Tensor, probs: Tensor, task: Task) -> float:
        """Return the score on CPU tensors."""

    def resample_statistic(
        self, labels: Tensor, probs: Tensor, task: Task
    ) -> Callable[[np.ndarray], float]:
        """Return the statistic the bootstrap evaluates on row indices of this split.

        The default is :meth:`compute` on those rows. A metric whose value covers a
        part of the labels that depends on the rows (e.g. the mean AUROC over the
        labels with both classes) fixes that part from the whole split here, so every
        resample measures the same quantity as the reported value.
        """

        def statistic(rows: np.ndarray) -> float:
            index = torch.as_tensor(rows)
            return self.compute(labels[index], probs[index], task)

        return statistic


class GenerationMetric(Metric, abc.ABC):
    """A metric of generated sentences against reference sentences, over a corpus."""

    tags: ClassVar[MetricTags] = MetricTags(kind=MetricKind.TEXT_GENERATION)

    @final
    def compute(self, hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float:
        """Score one generated sentence per row against that row's references."""
        return float(self._compute(list(hypotheses), [list(r) for r in references]))

    @abc.abstractmethod
    def _compute(self, hypotheses: list[str], references: list[list[str]]) -> float:
        """Return the corpus score."""


class ExplanationMetric(Metric, abc.ABC):
    """A metric of attributions: one finite score per (sample, target) row.

    ``explainer`` is passed for metrics that re-explain (sanity checks,
    robustness); ``model`` for metrics that re-run the model.
    """

    @final
    def score(
        self,
        model: Model,
        batch: Batch,
        targets: Tensor,
        attribution: Attribution,
        *,
        explainer: Explainer | None = None,
    ) -> Tensor:
        """Return per-row scores (N,) as a float64 CPU tensor."""
        return self.evaluate(model, batch, targets, attribution, explainer=explainer).values

    @final
    def evaluate(
        self,
        model: Model,
        batch: Batch,
        targets: Tensor,
        attribution: Attribution,
        *,
        explainer: Explainer | None = None,
    ) -> Scores:
        """Return per-row scores with their curves and notes (what the runner stores)."""
        self.check_params()
        require_metric_needs(self, model, batch, attribution, explainer)
        device = model.device
        out = self._score(
            model, batch.to(device), targets.to(device), attribution.to(device), explainer
        )
        scores = out if isinstance(out, Scores) else Scores(values=torch.as_tensor(out))
        values = check_scores(scores.values, len(batch), metric=self)
        curves = {k: v.detach().cpu() for k, v in scores.curves.items()}
        return Scores(values=values, curves=curves, notes=dict(scores.notes))

    @abc.abstractmethod
    def _score(
        self,
        model: Model,
        batch: Batch,
        targets: Tensor,
        attribution: Attribution,
        explainer: Explainer | None,
    ) -> Tensor | Scores:
        """Compute per-row scores; tensors are on the model's device."""
