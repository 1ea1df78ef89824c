"""Pixel flipping AOPC (Bach et al. 2015; Samek et al. 2017)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor

from harness.contracts import Attribution, Batch, ExplanationMetric, MetricTags, Model, Scores
from harness.contracts.tags import MetricKind, Modality, Need
from harness.metrics import _engine
from harness.metrics.faithfulness import _common as C

if TYPE_CHECKING:
    from harness.contracts import Explainer


class PixelFlipping(ExplanationMetric):
    """Average drop of the target score as pixels are flipped in attribution order (AOPC).

    Pixels are replaced by the baseline in order of decreasing attribution
    (``order="morf"``, most relevant first) or increasing attribution
    (``"lerf"``), ``pixels_per_step`` at a time (default ``ceil(HW / steps)``),
    until every pixel is replaced; after each step the model scores the image.
    The MoRF curve ``p_1 .. p_L`` is Quantus's ``PixelFlipping`` curve (softmax
    probability, ``"black"`` = per-sample minimum) and the value is Samek et
    al.'s AOPC

    ``AOPC = 1 / (L + 1) * sum_{k=0}^{L} (p_0 - p_k)``,

    the mean drop from the unperturbed score ``p_0`` (the k = 0 term is zero).
    A faithful attribution makes the score drop early under MoRF and late
    under LeRF, so the value is the AOPC for MoRF and minus the AOPC for LeRF
    (as in region perturbation): higher is better for both. (Quantus reports
    the trapezoidal area of ``p_k`` instead, where lower is better; the stored
    curve lets a user compute it.)

    With the same baseline and step size, the MoRF forward passes are shared
    with :class:`~harness.metrics.faithfulness.deletion_insertion.DeletionAUC`.
    A pixel is flipped in all its channels at once, ranked by its map value
    (Bach et al.); Quantus 0.6 ranks and flips the values of a multi-channel
    image one channel value at a time, so the two agree on one-channel images.

    Parameters
    ----------
    steps : int, default=64
        Number of steps when ``pixels_per_step`` is None.
    pixels_per_step : int or None, default=None
        Pixels flipped per step (Quantus ``features_in_step``; Quantus's default is 1).
    baseline : {"black", "zero", "mean", "blur", "uniform"} or float, default="black"
        The replacement value. ``"mean"`` is the mean of the unperturbed image
        (Quantus recomputes it from the partly flipped image at every step);
        ``"uniform"``: noise between the image's minimum and maximum, fixed per
        sample id.
    output : {"probability", "logit"}, default="probability"
        Score of the target class.
    order : {"morf", "lerf"}, default="morf"
        Flip the most or the least relevant pixels first.

    References
    ----------
    Bach et al. "On Pixel-Wise Explanations for Non-Linear Classifier Decisions
    by Layer-Wise Relevance Propagation." PLoS ONE 2015.
    Samek et al. "Evaluating the Visualization of What a Deep Neural Network Has
    Learned." IEEE TNNLS 2017.
    """

    name: ClassVar[str] = "faithfulness.pixel_flipping"
    version: ClassVar[str] = "1"
    higher_is_better: ClassVar[bool] = True
    bounds: ClassVar[tuple[float, float] | None] = None
    citation: ClassVar[str] = (
        "Bach et al. PLoS ONE 2015; Samek et al. Evaluating the Visualization of What a "
        "Deep Neural Network Has Learned. IEEE TNNLS 2017."
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
        output: str = "probability",
        order: str = "morf",
    ) -> None:
        self.steps = steps
        self.pixels_per_step = pixels_per_step
        self.baseline = baseline
        self.output = output
        self.order = order

    def check_params(self) -> None:
        """Refuse bad step parameters (:func:`~._common.check_steps`) and an unknown order."""
        C.check_steps(
            self.name, steps=self.steps, pixels_per_step=self.pixels_per_step,
            baseline=self.baseline, output=self.output,
        )  # fmt: skip
        C.choice(self.name, "order", self.order, C.ORDERS)

    @_engine.engine_scope
    def _score(
        self,
        model: Model,
        batch: Batch,
        targets: Tensor,
        attribution: Attribution,
        explainer: Explainer | None,
    ) -> Scores:
        full = C.step_curve(
            self.name, model, batch, targets, attribution, steps=self.steps,
            pixels_per_step=self.pixels_per_step, baseline=self.baseline, output=self.output,
            insert=False, descending=self.order == "morf",
        )  # fmt: skip
        curve = full[:, 1:]  # column 0 is the unperturbed image
        value = C.aopc(full[:, :1] - curve)
        return Scores(values=value if self.order == "morf" else -value, curves={self.output: curve})

    def quantus_auc(self, scores: Scores) -> Tensor:
        """Quantus's ``return_auc_per_sample`` value (``np.trapz`` of the curve, dx = 1)."""
        curve = scores.curves[self.output]
        return torch.trapezoid(curve, dim=1)
