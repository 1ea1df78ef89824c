"""Data randomisation test (Adebayo et al., 2018): a model trained on permuted labels.

An explanation that depends on what the model learned must change when the
model is trained on the same images with permuted labels. The runner trains
that twin (a cached stage, only when this metric is in the spec) and hands it
over as ``model.label_randomised``.
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from harness.contracts import Attribution, Batch, Explainer, ExplanationMetric, Model, Scores
from harness.contracts.tags import MetricKind, MetricTags, Modality, Need
from harness.errors import CapabilityError
from harness.metrics import _engine
from harness.metrics.sanity._common import check_similarity, compare_maps


class DataRandomisation(ExplanationMetric):
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

    def __init__(self, *, similarity: str = "spearman", absolute: bool = True) -> None:
        self.similarity = similarity
        self.absolute = absolute

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
        twin = model.label_randomised
        if explainer is None or attribution.pixels is None or twin is None:
            raise CapabilityError(
                f"metric {self.name!r} needs an explainer, pixel attributions and "
                "model.label_randomised (a model trained on permuted labels)",
                plugin=self.name,
            )
        maps = explainer.explain(twin, batch, targets).pixels
        return compare_maps(attribution.pixels, maps, self.similarity, self.absolute)  # type: ignore[arg-type]
