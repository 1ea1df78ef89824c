"""Random logit test (Sixt et al., 2020): explaining another class should give another map."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor

from harness import draws as _draws
from harness.contracts.metric import Scores
from harness.contracts.tags import MetricKind, MetricTags, Modality, Need, Task
from harness.errors import CapabilityError
from harness.metrics import _engine
from harness.metrics._correlation import rank_agreement
from harness.metrics._params import flag, integer
from harness.metrics.sanity._common import (
    MapComparison,
    check_similarity,
    compare_maps,
    features,
    reexplain,
    valid_features,
)
from harness.substeps import within

if TYPE_CHECKING:
    from harness.contracts.data import Attribution, Batch
    from harness.contracts.explainer import Explainer
    from harness.contracts.model import Model


def other_classes(
    targets: Tensor,
    num_classes: int,
    *,
    salt: str,
    seed: int,
    ids: Sequence[str],
    allowed: Tensor | None = None,
) -> Tensor:
    """Draw, per row, a class uniformly among the ``num_classes - 1`` other than its target.

    Row ``i`` draws ``j = row_seeds(salt, seed, ids)[i] % (K - 1)`` (see
    :func:`harness.draws.row_seeds`), so its class depends on its
    sample id only, never on its batch neighbours or position; ``j`` maps to
    ``j + (j >= target)``, the j-th class of the ascending list without the
    target. The modulo of a 63-bit hash biases ``j`` by less than ``K / 2**63``.
    ``allowed`` (N, K) bool narrows each row's choice to its allowed classes
    other than the target (the j-th of them, ``j`` modulo their count); a row
    with none draws among all the others.
    """
    seeds = _draws.row_seeds(salt, int(seed), ids)
    rows = torch.arange(len(targets), device=targets.device)
    others = torch.ones((len(targets), int(num_classes)), dtype=torch.bool, device=targets.device)
    others[rows, targets] = False
    pool = others if allowed is None else allowed.to(targets.device).bool() & others
    pool = torch.where(pool.any(dim=1, keepdim=True), pool, others)
    counts = pool.sum(dim=1).tolist()
    j = torch.tensor([s % c for s, c in zip(seeds, counts, strict=True)], device=targets.device)
    hit = (pool.cumsum(dim=1) == (j + 1).view(-1, 1)) & pool
    return hit.long().argmax(dim=1)


def score_other_classes(
    model: Model,
    batch: Batch,
    attribution: Attribution,
    explainer: Explainer,
    others: Tensor,
    *,
    similarity: str = "ssim",
    absolute: bool = False,
    over: str = "pixels",
    pad_token: int = 0,
) -> Scores:
    """Explain ``others`` (N,) and compare each row's map with the attribution's (``over``).

    The part of :class:`RandomLogit` after the class draw, public so a caller
    (or a test) can score classes drawn elsewhere, e.g. by Quantus.
    """
    check_similarity(RandomLogit.name, similarity)
    reference = features(attribution, over)
    maps = None if reference is None else reexplain(model, explainer, batch, others, over)
    if reference is None or maps is None:
        missing = "the attribution" if reference is None else "the explainer's output"
        raise CapabilityError(
            f"{RandomLogit.name}: {missing} has no {over} - expected a tensor, got None.",
            plugin=RandomLogit.name,
        )
    valid = valid_features(batch, over, pad_token)
    return compare_maps(reference, maps, similarity, absolute, valid)


class RandomLogit(MapComparison):
    """Similarity between the map for the target and the map for a random other class.

    The explainer re-explains the same inputs for a class drawn uniformly among
    the others, and each row's two maps are compared; lower is better (a
    class-sensitive explanation changes). For a multi-label model the class is
    drawn among the row's negative labels (label 0), else among its labels not
    known to be present (uncertain -1, missing -2), else among all others:
    another finding present in the image may rightly share the map, so the
    fraction of rows left with a present finding is noted
    (``notes["other_class_present_fraction"]``).
    ``similarity="ssim"`` is the default, as in ``quantus.RandomLogit``; Quantus applies scikit-image's SSIM
    to the flattened maps (a 1-D signal), whereas this computes the 2-D SSIM of
    the images (validated against ``skimage.metrics.structural_similarity``), as
    the SSIM of Adebayo et al. is meant. Each row's other class is keyed on
    ``(seed, sample id)`` (:func:`other_classes`), so a sample's score does not
    depend on the batch it is in; Quantus instead draws by batch position from
    ``np.random.seed(seed)``, so the two explain different classes (the test
    compares them on Quantus's classes via :func:`score_other_classes`). Maps
    are scaled to max |a| = 1 per row. In a run, the explainer repeats the
    random draws it made for the attribution (:func:`harness.draws.explainer_seed`),
    so a stochastic explainer's map (LIME, SmoothGrad) changes with the class
    alone, not with new samples.

    Parameters
    ----------
    similarity : {"ssim", "spearman"}, default="ssim"
        How the two maps are compared.
    absolute : bool, default=False
        Compare absolute maps (Quantus's default is signed).
    seed : int, default=42
        Seed of the class draw.
    over : {"pixels", "tokens"}, default="pixels"
        Compare pixel maps, or token scores of text and image+text models
        (Spearman over the document's tokens; needs ``similarity="spearman"``).
    pad_token : int, default=0
        With ``over="tokens"``: the padding id, left out of the comparison.
    agreement : bool, default=True
        Where a row has more than one class to draw from (more than two
        classes, or several negative labels), also draw a second, independent
        class per row (this metric with seed
        :func:`harness.draws.second_run_seed` of ``seed``), re-explain the rows
        whose class changed, and report the Spearman correlation across rows
        of the two runs' scores as ``notes["run_agreement"]``: how far the class
        drawn, not the explainer, ranks the rows. Costs up to one more
        re-explanation of the explain set; with two classes nothing is drawn
        and nothing is re-explained. The value comes from the first run alone.

    References
    ----------
    Sixt, Granz, Landgraf. "When Explanations Lie: Why Many Modified BP
    Attributions Fail." ICML 2020.
    """

    name: ClassVar[str] = "sanity.random_logit"
    # 2: other classes keyed on sample ids (1 drew them by batch position, as Quantus).
    # 3: two constant maps score 1 (Spearman), not 0; 4: multi-label draws among negative labels
    # 5: a multi-label row without a negative draws among its uncertain or missing labels first
    # 6: notes["run_agreement"] from a second class draw (values unchanged)
    version: ClassVar[str] = "6"
    citation: ClassVar[str] = "Sixt, Granz, Landgraf, When Explanations Lie, ICML 2020"
    tags: ClassVar[MetricTags] = MetricTags(
        kind=MetricKind.SANITY,
        needs=frozenset({Need.EXPLAINER, Need.PIXEL_ATTRIBUTIONS}),
        modalities=frozenset({Modality.IMAGE, Modality.IMAGE_TEXT}),
    )
    higher_is_better: ClassVar[bool] = False
    bounds: ClassVar[tuple[float, float] | None] = (-1.0, 1.0)

    def __init__(
        self,
        *,
        similarity: str = "ssim",
        absolute: bool = False,
        seed: int = 42,
        over: str = "pixels",
        pad_token: int = 0,
        agreement: bool = True,
    ) -> None:
        self.similarity = similarity
        self.absolute = absolute
        self.seed = seed
        self.over = over
        self.pad_token = pad_token
        self.agreement = agreement

    def check_params(self) -> None:
        """Refuse what every map comparison refuses, a seed that is not an integer, a non-bool flag."""
        super().check_params()
        integer(self.name, "seed", self.seed)
        flag(self.name, "agreement", self.agreement)

    @_engine.engine_scope
    def _score(
        self,
        model: Model,
        batch: Batch,
        targets: Tensor,
        attribution: Attribution,
        explainer: Explainer | None,
    ) -> Scores:
        if explainer is None or features(attribution, self.over) is None:
            raise CapabilityError(
                f"metric {self.name!r} needs an explainer and {self.over} attributions",
                plugin=self.name,
            )
        with torch.inference_mode():
            num_classes = int(model.logits(batch.index([0])).shape[1])
        if num_classes < 2:
            raise CapabilityError(
                f"metric {self.name!r} needs a model with at least 2 outputs", plugin=self.name
            )
        allowed = positive = None
        if model.task is Task.MULTILABEL and batch.labels.dim() == 2:
            labels = batch.labels.to(targets.device)
            negative, positive = labels == 0, labels == 1
            # a row without a negative label draws among labels not known present (-1, -2)
            allowed = torch.where(negative.any(dim=1, keepdim=True), negative, ~positive)

        def draw(seed: int) -> Tensor:
            return other_classes(
                targets, num_classes, salt=self.name, seed=seed, ids=batch.ids, allowed=allowed
            )

        compare = partial(
            score_other_classes, model, similarity=self.similarity, absolute=self.absolute,
            over=self.over, pad_token=self.pad_token,
        )  # fmt: skip
        others = draw(self.seed)
        # the second draw's rows whose class changed are explained again (agreement)
        second = draw(_draws.second_run_seed(self.seed)) if self.agreement else others
        moved = (second != others).nonzero().view(-1)
        total = len(batch) + len(moved)
        with within(0, total):
            scores = compare(batch, attribution, explainer, others)
        notes = dict(scores.notes)
        if len(moved):  # else no row had a choice (two classes): nothing is random
            again = scores.values.clone()
            with within(len(batch), total):
                again[moved] = compare(
                    batch.index(moved), attribution.index(moved), explainer, second[moved]
                ).values
            finite = scores.values.isfinite() & again.isfinite()
            agreement = rank_agreement(scores.values[finite], again[finite])
            if agreement is not None:
                notes["run_agreement"] = agreement
        if positive is not None:
            rows = torch.arange(len(others), device=others.device)
            shared = positive[rows, others]  # every other label is a finding present too
            if bool(shared.any()):
                notes["other_class_present_fraction"] = float(shared.double().mean())
        return replace(scores, notes=notes)
