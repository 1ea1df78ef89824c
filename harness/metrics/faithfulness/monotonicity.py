"""Monotonicity (Arya et al. 2019, AIX360), as Quantus ``Monotonicity`` intends it."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor

from harness.contracts import Attribution, Batch, ExplanationMetric, MetricTags, Model, Scores
from harness.contracts.tags import MetricKind, Modality, Need
from harness.metrics import _engine
from harness.metrics._params import flag
from harness.metrics.faithfulness import _common as C
from harness.substeps import within

if TYPE_CHECKING:
    from harness.contracts import Explainer


class Monotonicity(ExplanationMetric):
    """1 if the target score never decreases as pixels are added, least relevant first.

    Starting from the baseline image, the input's pixels are put back in order
    of increasing attribution (``abs=True``: of increasing |attribution|),
    ``pixels_per_step`` at a time; the row scores 1.0 when the target
    probability after each step is at least the one before (``np.diff >= 0``
    over the steps, as Quantus), else 0.0. The mean over rows is the fraction
    of monotonic explanations: higher is better.

    Quantus 0.6.0's ``Monotonicity`` writes the baseline value (computed from
    the baseline image itself) instead of the input's pixels, so its image
    never changes and every row scores True. This class follows the paper
    (AIX360's ``monotonicity_metric`` inserts ``x[ind]``); the tests compare it
    with Quantus given a perturbation function that inserts the input pixels.

    Parameters
    ----------
    steps : int, default=64
        Number of steps when ``pixels_per_step`` is None.
    pixels_per_step : int or None, default=None
        Pixels added per step (Quantus ``features_in_step``; Quantus's default is 1).
    baseline : {"black", "zero", "mean", "blur", "uniform"} or float, default="black"
        The starting image; ``"black"`` is the per-sample minimum, ``"uniform"``
        noise between the image's minimum and maximum (fixed per sample id).
    abs : bool, default=True
        Order by absolute attribution (Quantus's default).
    output : {"probability", "logit"}, default="probability"
        Score of the target class.
    full_curve : bool, default=False
        Score every step of every row and return the insertion curves. By
        default a row stops being evaluated once its score has decreased (its
        value is then 0 whatever follows): steps run in blocks that double in
        size (the first about a quarter of an engine chunk), fewer forward
        passes are spent, and no curve is returned. The values are the same
        either way; a row that stays monotonic costs every step.

    References
    ----------
    Arya et al. "One Explanation Does Not Fit All: A Toolkit and Taxonomy of AI
    Explainability Techniques." arXiv:1909.03012, 2019.
    """

    name: ClassVar[str] = "faithfulness.monotonicity"
    version: ClassVar[str] = "1"
    higher_is_better: ClassVar[bool] = True
    bounds: ClassVar[tuple[float, float] | None] = (0.0, 1.0)
    citation: ClassVar[str] = (
        "Arya et al. One Explanation Does Not Fit All: A Toolkit and Taxonomy of AI "
        "Explainability Techniques. arXiv:1909.03012, 2019."
    )
    tags: ClassVar[MetricTags] = MetricTags(
        kind=MetricKind.FAITHFULNESS,
        needs=frozenset({Need.PIXEL_ATTRIBUTIONS}),
        modalities=frozenset({Modality.IMAGE, Modality.IMAGE_TEXT}),
    )

    def __init__(
        self,
        *,
        steps: int = 64,
        pixels_per_step: int | None = None,
        baseline: str | float = "black",
        abs: bool = True,  # noqa: A002 - Quantus's parameter name
        output: str = "probability",
        full_curve: bool = False,
    ) -> None:
        self.steps = steps
        self.pixels_per_step = pixels_per_step
        self.baseline = baseline
        self.abs = abs
        self.output = output
        self.full_curve = full_curve

    def check_params(self) -> None:
        """Refuse bad step parameters (:func:`~._common.check_steps`) and non-bool flags."""
        C.check_steps(
            self.name, steps=self.steps, pixels_per_step=self.pixels_per_step,
            baseline=self.baseline, output=self.output,
        )  # fmt: skip
        flag(self.name, "abs", self.abs)
        flag(self.name, "full_curve", self.full_curve)

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
        output = self.output
        hw = images.shape[-2] * images.shape[-1]
        k = C.step_size(hw, self.steps, self.pixels_per_step)
        order_by = pixels.abs() if self.abs else pixels
        n_steps = -(-hw // k)
        rank = C.ranks(order_by.reshape(len(pixels), -1), descending=False)
        counts = (torch.arange(1, n_steps + 1, device=images.device) * k).clamp(max=hw)
        base = C.baseline_images(images, self.baseline, batch.ids)
        if not self.full_curve:
            curve = self._decided_curve(model, batch, images, targets, rank, base, counts, output)
            decreased = (curve.diff(dim=1) < 0).any(dim=1)
            return Scores(values=(~decreased).double())
        make = C.threshold_maker(images, images, base, rank, n_steps, counts)
        curve = _engine.evaluate(model, batch, targets, n_steps, make, output=output)
        monotonic = (curve.diff(dim=1) >= 0).all(dim=1)
        return Scores(values=monotonic.double(), curves={output: curve})

    @staticmethod
    def _decided_curve(
        model: Model,
        batch: Batch,
        images: Tensor,
        targets: Tensor,
        rank: Tensor,
        base: Tensor,
        counts: Tensor,
        output: str,
    ) -> Tensor:
        """Return the insertion curve (N, S), evaluating only undecided rows in growing blocks.

        A row leaves after the block in which its score first decreased; its
        later steps stay NaN (they cannot change its value).
        """
        n, n_steps = len(batch), len(counts)
        curve = torch.full((n, n_steps), float("nan"), device=images.device)
        active = torch.arange(n, device=images.device)
        block = max(2, _engine.chunk_size(model, images) // (4 * n))
        start = evaluated = 0
        while start < n_steps and len(active):
            stop = min(n_steps, start + block)
            sub: Batch = batch
            rows: tuple[Tensor, ...] = (images, base, rank, targets)
            if len(active) < n:  # the first block (every row undecided) needs no copies
                sub = batch.index(active)
                rows = tuple(t.index_select(0, active) for t in rows)
            sub_images, sub_base, sub_rank, sub_targets = rows
            make = C.threshold_maker(
                sub_images, sub_images, sub_base, sub_rank, stop - start, counts[start:stop]
            )
            # inputs evaluated, of at most every row's every step (decided rows leave early)
            with within(evaluated, n * n_steps):
                scores = _engine.evaluate(
                    model, sub, sub_targets, stop - start, make, output=output
                )
            evaluated += len(active) * (stop - start)
            curve[active, start:stop] = scores.to(curve.dtype)
            seen = curve[active, :stop]
            decreased = (seen[:, 1:] < seen[:, :-1]).any(dim=1)
            active = active[~decreased]
            start, block = stop, block * 2
        return curve
