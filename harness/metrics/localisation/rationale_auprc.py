"""AUPRC of token attributions against the target's token rationale (ERASER's soft-score metric)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar

from torch import Tensor

from harness.contracts import Attribution, Batch, ExplanationMetric, MetricTags, Model
from harness.contracts.tags import MetricKind, Modality, Need
from harness.errors import DataError
from harness.metrics._params import integer
from harness.metrics._tokens import token_inputs
from harness.metrics.localisation.auprc import average_precision

if TYPE_CHECKING:
    from harness.contracts import Explainer


class RationaleAUPRC(ExplanationMetric):
    """Average precision of token attributions as a detector of the rationale's tokens.

    Tokens are ranked by their signed attribution; each distinct value is a
    threshold; the score is the step-wise area under the precision-recall
    curve against the target's rationale (scikit-learn's
    ``average_precision_score``). Padding (``pad_token``) is not part of the
    document: it is neither ranked nor counted. ERASER's scorer reports this
    for soft token scores as ``average_precision`` (its ``auprc`` is the
    trapezoidal area under the same curve, a few hundredths away); a random
    attribution scores about the rationale's share of the document, the
    rationale itself 1.

    Parameters
    ----------
    pad_token : int, default=0
        The padding id.

    References
    ----------
    DeYoung et al. "ERASER: A Benchmark to Evaluate Rationalized NLP Models." ACL 2020.
    """

    name: ClassVar[str] = "localisation.rationale_auprc"
    version: ClassVar[str] = "1"
    higher_is_better: ClassVar[bool] = True
    bounds: ClassVar[tuple[float, float] | None] = (0.0, 1.0)
    citation: ClassVar[str] = (
        "DeYoung et al. ERASER: A Benchmark to Evaluate Rationalized NLP Models. ACL 2020; "
        "scikit-learn average_precision_score"
    )
    tags: ClassVar[MetricTags] = MetricTags(
        kind=MetricKind.LOCALISATION,
        needs=frozenset({Need.RATIONALES, Need.TOKEN_ATTRIBUTIONS}),
        modalities=frozenset({Modality.TEXT, Modality.IMAGE_TEXT}),
    )

    def __init__(self, *, pad_token: int = 0) -> None:
        self.pad_token = pad_token

    def check_params(self) -> None:
        """Refuse a ``pad_token`` that is not an integer."""
        integer(self.name, "pad_token", self.pad_token)

    def _score(
        self,
        model: Model,
        batch: Batch,
        targets: Tensor,
        attribution: Attribution,
        explainer: Explainer | None,
    ) -> Tensor:
        _, scores, valid = token_inputs(self.name, batch, attribution, self.pad_token)
        rationale = batch.target_rationales(targets).bool().to(valid.device)
        if tuple(rationale.shape) != tuple(scores.shape):
            raise DataError(
                f"metric {self.name!r}: rationales of shape {tuple(rationale.shape)} for "
                f"attributions {tuple(scores.shape)} - expected equal (N, L) shapes."
            )
        rationale &= valid
        empty = ~rationale.any(dim=1)
        if bool(empty.any()):
            ids = [batch.ids[i] for i in empty.nonzero().flatten().tolist()]
            raise DataError(
                f"metric {self.name!r}: no rationale token for sample(s) {ids} - expected at "
                "least one rationale token outside padding per scored row."
            )
        ranked = scores.float().masked_fill(~valid, -math.inf)  # padding after every token
        return average_precision(ranked, rationale)
