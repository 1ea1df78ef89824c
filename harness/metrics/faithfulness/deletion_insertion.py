"""Deletion and insertion AUC (Petsiuk, Das, Saenko 2018, RISE)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from torch import Tensor

from harness.contracts import Attribution, Batch, ExplanationMetric, MetricTags, Model, Scores
from harness.contracts.tags import MetricKind, Modality, Need
from harness.metrics import _engine
from harness.metrics.faithfulness import _common as C

if TYPE_CHECKING:
    from harness.contracts import Explainer

_TAGS = MetricTags(
    kind=MetricKind.FAITHFULNESS,
    needs=frozenset({Need.PIXEL_ATTRIBUTIONS}),
    modalities=frozenset({Modality.IMAGE, Modality.IMAGE_TEXT}),
)
_CITATION = (
    "Petsiuk, Das, Saenko. RISE: Randomized Input Sampling for Explanation of "
    "Black-box Models. BMVC 2018."
)


class _RiseAUC(ExplanationMetric):
    """Common scoring of deletion and insertion; subclasses set ``_insert``."""

    tags: ClassVar[MetricTags] = _TAGS
    citation: ClassVar[str] = _CITATION
    _insert: ClassVar[bool] = False

    def __init__(
        self,
        *,
        steps: int = 64,
        pixels_per_step: int | None = None,
        baseline: str | float = "zero",
        output: str = "probability",
    ) -> None:
        self.steps = steps
        self.pixels_per_step = pixels_per_step
        self.baseline = baseline
        self.output = output

    def check_params(self) -> None:
        """Refuse non-positive ``steps`` / ``pixels_per_step``, an unknown baseline or output."""
        C.check_steps(
            self.name, steps=self.steps, pixels_per_step=self.pixels_per_step,
            baseline=self.baseline, output=self.output,
        )  # fmt: skip

    @_engine.engine_scope
    def _score(
        self,
        model: Model,
        batch: Batch,
        targets: Tensor,
        attribution: Attribution,
        explainer: Explainer | None,
    ) -> Scores:
        curve = C.step_curve(
            self.name, model, batch, targets, attribution, steps=self.steps,
            pixels_per_step=self.pixels_per_step, baseline=self.baseline, output=self.output,
            insert=self._insert,
        )  # fmt: skip
        return Scores(values=C.normalised_auc(curve), curves={self.output: curve})


class DeletionAUC(_RiseAUC):
    """Area under the target score as the most relevant pixels are deleted (lower is better).

    The curve starts at the unperturbed score and has one point per step of
    ``pixels_per_step`` pixels (default ``ceil(HW / steps)``) replaced by the
    baseline, most relevant first, until every pixel is replaced. The AUC is
    the trapezoidal area with the x-axis scaled to [0, 1], as in RISE. A
    faithful attribution makes the score collapse early: lower is better.

    With the same ``baseline`` and step size, the forward passes are shared
    with :class:`~harness.metrics.faithfulness.pixel_flipping.PixelFlipping`.

    Parameters
    ----------
    steps : int, default=64
        Number of deletion steps when ``pixels_per_step`` is None.
    pixels_per_step : int or None, default=None
        Pixels replaced per step (RISE used 224 on 224 x 224 images).
    baseline : {"zero", "black", "mean", "blur", "uniform"} or float, default="zero"
        What a deleted pixel becomes (RISE: zero, on normalised inputs;
        ``"uniform"``: noise between the image's minimum and maximum, fixed per
        sample id).
    output : {"probability", "logit"}, default="probability"
        Score of the target class on the curve.

    References
    ----------
    Petsiuk, Das, Saenko. "RISE: Randomized Input Sampling for Explanation of
    Black-box Models." BMVC 2018.
    """

    name: ClassVar[str] = "faithfulness.deletion_auc"
    version: ClassVar[str] = "1"
    higher_is_better: ClassVar[bool] = False
    _insert: ClassVar[bool] = False


class InsertionAUC(_RiseAUC):
    """Area under the target score as the most relevant pixels are inserted (higher is better).

    The curve starts at the baseline image (default: the input blurred with a
    Gaussian of kernel 11 and sigma 5, as in RISE) and reveals ``pixels_per_step``
    pixels of the input per step, most relevant first, until the whole input
    is shown. A faithful attribution restores the score early: higher is better.

    Parameters
    ----------
    steps : int, default=64
        Number of insertion steps when ``pixels_per_step`` is None.
    pixels_per_step : int or None, default=None
        Pixels inserted per step.
    baseline : {"zero", "black", "mean", "blur", "uniform"} or float, default="blur"
        The canvas the pixels are inserted onto (``"uniform"``: noise between the
        image's minimum and maximum, fixed per sample id).
    output : {"probability", "logit"}, default="probability"
        Score of the target class on the curve.

    References
    ----------
    Petsiuk, Das, Saenko. "RISE: Randomized Input Sampling for Explanation of
    Black-box Models." BMVC 2018.
    """

    name: ClassVar[str] = "faithfulness.insertion_auc"
    version: ClassVar[str] = "1"
    higher_is_better: ClassVar[bool] = True
    _insert: ClassVar[bool] = True

    def __init__(
        self,
        *,
        steps: int = 64,
        pixels_per_step: int | None = None,
        baseline: str | float = "blur",
        output: str = "probability",
    ) -> None:
        self.steps = steps
        self.pixels_per_step = pixels_per_step
        self.baseline = baseline
        self.output = output
