"""Data randomisation test (Adebayo et al., 2018): a model trained on permuted labels.

An explanation that depends on what the model learned must change when the
model is trained on the same images with permuted labels. The runner trains
that twin (a cached stage, only when this metric is in the spec) and hands it
over as ``model.label_randomised``.
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from harness.contracts import Attribution, Batch, Explainer, Model, Scores
from harness.contracts.tags import MetricKind, MetricTags, Modality, Need
from harness.errors import CapabilityError
from harness.metrics import _engine
from harness.metrics.sanity._common import (
    MapComparison,
    compare_maps,
    features,
    reexplain,
    valid_features,
)


class DataRandomisation(MapComparison):
    """Similarity between maps of the trained model and of its label-permuted twin.

    Lower is better: the explanation should change when the labels carried no
    information. ``similarity`` is "spearman" (rank correlation of the maps,
    the paper's main measure) or "ssim"; ``absolute`` compares |maps|, as
    Adebayo et al. do for gradient-based maps.

    Parameters
    ----------
    similarity : {"spearman", "ssim"}, default="spearman"
        How the two maps of a row are compared.
    absolute : bool, default=True
        Compare absolute values of the maps.
    over : {"pixels", "tokens"}, default="pixels"
        Compare pixel maps, or token scores of text and image+text models
        (Spearman over the document's tokens; needs ``similarity="spearman"``).
    pad_token : int, default=0
        With ``over="tokens"``: the padding id, left out of the comparison.

    References
    ----------
    Adebayo, Gilmer, Muelly, Goodfellow, Hardt, Kim. "Sanity Checks for
    Saliency Maps." NeurIPS 2018, section 4 (data randomisation test).
    """

    name: ClassVar[str] = "sanity.data_randomisation"
    version: ClassVar[str] = "2"  # 2: two constant maps score 1 (Spearman), not 0
    citation: ClassVar[str] = "Adebayo et al., Sanity Checks for Saliency Maps, NeurIPS 2018"
    tags: ClassVar[MetricTags] = MetricTags(
        kind=MetricKind.SANITY,
        needs=frozenset({Need.EXPLAINER, Need.PIXEL_ATTRIBUTIONS, Need.LABEL_RANDOMISED_MODEL}),
        modalities=frozenset({Modality.IMAGE, Modality.IMAGE_TEXT}),
    )
    higher_is_better: ClassVar[bool] = False
    bounds: ClassVar[tuple[float, float] | None] = (-1.0, 1.0)

    def __init__(
        self,
        *,
        similarity: str = "spearman",
        absolute: bool = True,
        over: str = "pixels",
        pad_token: int = 0,
    ) -> None:
        self.similarity = similarity
        self.absolute = absolute
        self.over = over
        self.pad_token = pad_token

    @_engine.engine_scope
    def _score(
        self,
        model: Model,
        batch: Batch,
        targets: Tensor,
        attribution: Attribution,
        explainer: Explainer | None,
    ) -> Scores:
        twin = model.label_randomised
        reference = features(attribution, self.over)
        if explainer is None or reference is None or twin is None:
            raise CapabilityError(
                f"metric {self.name!r} needs an explainer, {self.over} attributions and "
                "model.label_randomised (a model trained on permuted labels)",
                plugin=self.name,
            )
        maps = reexplain(twin, explainer, batch, targets, self.over)
        valid = valid_features(batch, self.over, self.pad_token)
        return compare_maps(reference, maps, self.similarity, self.absolute, valid)  # type: ignore[arg-type]
