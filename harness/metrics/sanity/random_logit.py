"""Random logit test (Sixt et al., 2020): explaining another class should give another map."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
from torch import Tensor

from harness.contracts.metric import ExplanationMetric, Scores
from harness.contracts.tags import MetricKind, MetricTags, Modality, Need
from harness.errors import CapabilityError
from harness.metrics import _engine
from harness.metrics.sanity._common import check_similarity, compare_maps

if TYPE_CHECKING:
    from harness.contracts.data import Attribution, Batch
    from harness.contracts.explainer import Explainer
    from harness.contracts.model import Model


def other_classes(targets: Tensor, num_classes: int, seed: int) -> Tensor:
    """Draw, per row, a class uniformly among the ``num_classes - 1`` other than its target.

    The draw ``j ~ U{0, ..., K-2}`` comes from ``numpy.random.RandomState(seed)``
    (a private generator, so the global streams are untouched), the same
    numbers ``quantus.RandomLogit(seed=seed)`` draws after ``np.random.seed``;
    ``j`` maps to ``j + (j >= target)``, the j-th class of the ascending list
    without the target, as in Quantus. So both explain the same classes.
    """
    j = _draws(int(seed), int(num_classes), len(targets)).to(targets.device)
    return j + (j >= targets).long()


@functools.lru_cache(maxsize=32)
def _draws(seed: int, num_classes: int, n: int) -> Tensor:
    """Return the (n,) int64 CPU draws of ``RandomState(seed)`` (cached: seeding costs ~0.1 ms).

    Callers must not modify the returned tensor.
    """
    draws = np.random.RandomState(seed).randint(0, num_classes - 1, n)
    return torch.as_tensor(draws, dtype=torch.long)


class RandomLogit(ExplanationMetric):
    """Similarity between the map for the target and the map for a random other class.

    The explainer re-explains the same inputs for a class drawn uniformly among
    the others (seeded), and each row's two maps are compared; lower is better
    (a class-sensitive explanation changes). ``similarity="ssim"`` is the
    default, as in ``quantus.RandomLogit``; Quantus applies scikit-image's SSIM
    to the flattened maps (a 1-D signal), whereas this computes the 2-D SSIM of
    the images (validated against ``skimage.metrics.structural_similarity``), as
    the SSIM of Adebayo et al. is meant. The other classes are the ones Quantus
    draws for the same seed, so the metric is deterministic. Maps are scaled to
    max |a| = 1 per row.

    Parameters
    ----------
    similarity : {"ssim", "spearman"}, default="ssim"
        How the two maps are compared.
    absolute : bool, default=False
        Compare absolute maps (Quantus's default is signed).
    seed : int, default=42
        Seed of the class draw.

    References
    ----------
    Sixt, Granz, Landgraf. "When Explanations Lie: Why Many Modified BP
    Attributions Fail." ICML 2020.
    """

    name: ClassVar[str] = "sanity.random_logit"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = "Sixt, Granz, Landgraf, When Explanations Lie, ICML 2020"
    tags: ClassVar[MetricTags] = MetricTags(
        kind=MetricKind.SANITY,
        needs=frozenset({Need.EXPLAINER, Need.PIXEL_ATTRIBUTIONS}),
        modalities=frozenset({Modality.IMAGE, Modality.IMAGE_TEXT}),
    )
    higher_is_better: ClassVar[bool] = False
    bounds: ClassVar[tuple[float, float] | None] = (-1.0, 1.0)

    def __init__(self, *, similarity: str = "ssim", absolute: bool = False, seed: int = 42) -> None:
        self.similarity = similarity
        self.absolute = absolute
        self.seed = seed

    @_engine.engine_scope
    def _score(
        self,
        model: Model,
        batch: Batch,
        targets: Tensor,
        attribution: Attribution,
        explainer: Explainer | None,
    ) -> Scores:
        check_similarity(self.name, self.similarity)
        if explainer is None or attribution.pixels is None:
            raise CapabilityError(
                f"metric {self.name!r} needs an explainer and pixel attributions", plugin=self.name
            )
        with torch.inference_mode():
            num_classes = int(model.logits(batch.index([0])).shape[1])
        if num_classes < 2:
            raise CapabilityError(
                f"metric {self.name!r} needs a model with at least 2 outputs", plugin=self.name
            )
        others = other_classes(targets, num_classes, self.seed)
        maps = explainer.explain(model, batch, others).pixels
        return compare_maps(attribution.pixels, maps, self.similarity, self.absolute)  # type: ignore[arg-type]
