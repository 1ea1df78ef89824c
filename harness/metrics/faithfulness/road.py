"""ROAD: RemOve And Debias with noisy linear imputation (Rong et al. 2022)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor

from harness.contracts import Attribution, Batch, ExplanationMetric, MetricTags, Model, Scores
from harness.contracts.tags import MetricKind, Modality, Need
from harness.draws import base_seed, row_seeds, second_run_seed
from harness.metrics import _engine
from harness.metrics._correlation import rank_agreement
from harness.metrics._params import flag, integer, number_in, percentages
from harness.metrics.faithfulness import _common as C
from harness.metrics.faithfulness._imputation import add_noise, linear_imputation

if TYPE_CHECKING:
    from harness.contracts import Explainer

_OUTPUTS = ("correct", "probability")


def _sample_keys(seed: int, ids: Sequence[str], device: torch.device) -> Tensor:
    """Return a 40-bit key per sample id: a row's noise ignores its batch position.

    40 bits leave room to number each (sample, percentage) pair in an int64.
    """
    keys = [k & (2**40 - 1) for k in row_seeds(ROAD.name, seed, ids)]
    return torch.tensor(keys, dtype=torch.int64, device=device)


class ROAD(ExplanationMetric):
    """Target score after removing a percentage of pixels by noisy linear imputation.

    For each percentage ``p``, the top ``int(HW * p / 100)`` pixels (most
    relevant first for ``order="morf"``, least relevant first for ``"lerf"``)
    are removed and imputed from their neighbours (ROAD's noisy linear
    imputation: the weighted neighbour mean solved jointly for all removed
    pixels, plus ``noise * N(0, 1)``), and the model scores the image. The
    imputation hides the removal's shape, so the model cannot read the mask.
    Imputation runs batched on the model's device (see
    :mod:`harness.metrics.faithfulness._imputation`).

    The curve is the per-row score at each percentage: ``"correct"`` (1 if the
    target is still predicted, as Quantus and the paper's accuracy) or the
    target ``"probability"``. The value is its mean over the percentages for
    MoRF (a faithful attribution destroys the prediction early: lower is
    better) and ``1 - mean`` for LeRF (a faithful attribution keeps it: the
    loss is low), so lower is better for both orders.

    Parameters
    ----------
    percentages : sequence of float, default=(1, 3, ..., 99)
        Percentages of pixels removed (Quantus's default).
    order : {"morf", "lerf"}, default="morf"
        Remove the most or the least relevant pixels first.
    noise : float, default=0.01
        Standard deviation of the noise added to imputed pixels.
    output : {"correct", "probability"}, default="correct"
        Score on the curve.
    seed : int or None, default=None
        Seed of the noise; None draws one from torch's global generator. The
        noise of an image depends only on the seed, the sample id and the
        percentage, never on the batch composition or the chunk size.
    agreement : bool, default=True
        With ``noise > 0``, also score every imputed image with a second,
        independent noise draw (the imputation is shared; the forward passes
        double) and report the Spearman correlation across rows of the two
        runs' values as ``notes["run_agreement"]``: how far the noise, not the
        attribution, ranks the rows. The second run is this metric with seed
        :func:`harness.draws.second_run_seed` of ``seed``. The value and curve
        come from the first run alone, so they do not depend on this setting.

    References
    ----------
    Rong, Leemann, Borisov, Kasneci, Kasneci. "A Consistent and Efficient
    Evaluation Strategy for Attribution Methods." ICML 2022.
    """

    name: ClassVar[str] = "faithfulness.road"
    version: ClassVar[str] = "2"
    higher_is_better: ClassVar[bool] = False
    bounds: ClassVar[tuple[float, float] | None] = (0.0, 1.0)
    citation: ClassVar[str] = (
        "Rong, Leemann, Borisov, Kasneci, Kasneci. A Consistent and Efficient Evaluation "
        "Strategy for Attribution Methods. ICML 2022."
    )
    tags: ClassVar[MetricTags] = MetricTags(
        kind=MetricKind.FAITHFULNESS,
        needs=frozenset({Need.PIXEL_ATTRIBUTIONS}),
        modalities=frozenset({Modality.IMAGE, Modality.IMAGE_TEXT}),
        deterministic=False,
    )

    def __init__(
        self,
        *,
        percentages: Sequence[float] = tuple(range(1, 100, 2)),
        order: str = "morf",
        noise: float = 0.01,
        output: str = "correct",
        seed: int | None = None,
        agreement: bool = True,
    ) -> None:
        self.percentages = percentages
        self.order = order
        self.noise = noise
        self.output = output
        self.seed = seed
        self.agreement = agreement

    def check_params(self) -> None:
        """Refuse percentages outside [0, 100), an unknown order or output, negative noise."""
        percentages(self.name, "percentages", self.percentages, "[0, 100)", 0, 100, "numbers")
        C.choice(self.name, "order", self.order, C.ORDERS)
        C.choice(self.name, "output", self.output, _OUTPUTS)
        number_in(self.name, "noise", self.noise, "[0, inf)", 0, math.inf)
        if self.seed is not None:
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
        images, pixels = C.images_of(self.name, batch, attribution)
        order, output = self.order, self.output
        n, _, h, w = images.shape
        hw = h * w
        counts = torch.tensor([int(hw * p / 100) for p in self.percentages], device=images.device)
        steps = len(counts)
        rank = C.ranks(pixels.reshape(n, -1), descending=order == "morf")
        seed = base_seed(self.seed)
        noise = float(self.noise)
        runs = 2 if self.agreement and noise else 1
        seeds = (seed, second_run_seed(seed))[:runs]
        keys = torch.stack([_sample_keys(s, batch.ids, images.device) * steps for s in seeds])

        def make(flat: Tensor) -> Tensor:
            # flat = (row * steps + step) * runs + run: a chunk imputes each image once
            image = torch.div(flat, runs, rounding_mode="floor")
            if runs > 1:
                image, inverse = torch.unique_consecutive(image, return_inverse=True)
            rows = torch.div(image, steps, rounding_mode="floor")
            step = image % steps
            removed = (rank[rows] < counts[step].view(-1, 1)).view(-1, 1, h, w)
            imputed = linear_imputation(images[rows], removed)
            if runs == 1:
                ids = keys[0, rows] + step
                return add_noise(imputed, removed, noise=noise, seed=seed, image_ids=ids)
            imputed, removed, run = imputed[inverse], removed[inverse], flat % runs
            ids = keys[run, rows[inverse]] + step[inverse]
            out = torch.empty_like(imputed)
            for r, run_seed in enumerate(seeds):
                picked = (run == r).nonzero().squeeze(1)
                out[picked] = add_noise(
                    imputed[picked], removed[picked], noise=noise, seed=run_seed,
                    image_ids=ids[picked],
                )  # fmt: skip
            return out

        scores = _engine.evaluate(model, batch, targets, steps * runs, make, output=output)
        curves = scores.view(n, steps, runs)
        means = curves.mean(dim=1)
        values = means if order == "morf" else 1 - means  # (N, runs)
        notes = {}
        if runs == 2:
            agreement = rank_agreement(values[:, 0], values[:, 1])
            if agreement is not None:  # None when either run gives every row the same value
                notes["run_agreement"] = agreement
        return Scores(values=values[:, 0], curves={output: curves[..., 0]}, notes=notes)
