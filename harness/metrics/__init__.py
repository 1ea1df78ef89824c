"""Core metrics, registered as a default plugin (pytest ``default_plugins`` style).

Targets are lazy: nothing here imports torch-heavy modules until a metric is used.
"""

from __future__ import annotations

from collections.abc import Mapping

from harness.hookspecs import hookimpl

_P = "harness.metrics"

METRICS: Mapping[str, str] = {
    # classification (scikit-learn)
    "classification.accuracy": f"{_P}.classification.accuracy:Accuracy",
    "classification.precision_weighted": f"{_P}.classification.precision_recall_f1:PrecisionWeighted",
    "classification.recall_weighted": f"{_P}.classification.precision_recall_f1:RecallWeighted",
    "classification.f1_weighted": f"{_P}.classification.precision_recall_f1:F1Weighted",
    "classification.f1_macro": f"{_P}.classification.precision_recall_f1:F1Macro",
    "classification.auroc": f"{_P}.classification.auroc:AUROC",
    "classification.masked_bce": f"{_P}.classification.masked_bce:MaskedBCE",
    "classification.masked_accuracy": f"{_P}.classification.masked_accuracy:MaskedAccuracy",
    # faithfulness
    "faithfulness.deletion_auc": f"{_P}.faithfulness.deletion_insertion:DeletionAUC",
    "faithfulness.insertion_auc": f"{_P}.faithfulness.deletion_insertion:InsertionAUC",
    "faithfulness.pixel_flipping": f"{_P}.faithfulness.pixel_flipping:PixelFlipping",
    "faithfulness.region_perturbation": f"{_P}.faithfulness.region_perturbation:RegionPerturbation",
    "faithfulness.correlation": f"{_P}.faithfulness.faithfulness_correlation:FaithfulnessCorrelation",
    "faithfulness.road": f"{_P}.faithfulness.road:ROAD",
    "faithfulness.monotonicity": f"{_P}.faithfulness.monotonicity:Monotonicity",
    "faithfulness.comprehensiveness": f"{_P}.faithfulness.eraser:Comprehensiveness",
    "faithfulness.sufficiency": f"{_P}.faithfulness.eraser:Sufficiency",
    # localisation
    "localisation.pointing_game": f"{_P}.localisation.pointing_game:PointingGame",
    "localisation.relevance_mass": f"{_P}.localisation.relevance_mass:RelevanceMassAccuracy",
    "localisation.relevance_rank": f"{_P}.localisation.relevance_rank:RelevanceRankAccuracy",
    "localisation.attribution_localisation": f"{_P}.localisation.attribution_localisation:AttributionLocalisation",
    "localisation.top_k_intersection": f"{_P}.localisation.top_k_intersection:TopKIntersection",
    "localisation.auprc": f"{_P}.localisation.auprc:AUPRC",
    "localisation.rationale_auprc": f"{_P}.localisation.rationale_auprc:RationaleAUPRC",
    "localisation.iou": f"{_P}.localisation.iou_hit_rate:IoU",
    "localisation.hit_rate": f"{_P}.localisation.iou_hit_rate:HitRate",
    # sanity checks
    "sanity.cascading_randomisation": f"{_P}.sanity.model_randomisation:CascadingRandomisation",
    "sanity.independent_randomisation": f"{_P}.sanity.model_randomisation:IndependentRandomisation",
    "sanity.random_logit": f"{_P}.sanity.random_logit:RandomLogit",
    "sanity.data_randomisation": f"{_P}.sanity.data_randomisation:DataRandomisation",
    # robustness
    "robustness.max_sensitivity": f"{_P}.robustness.sensitivity:MaxSensitivity",
    "robustness.avg_sensitivity": f"{_P}.robustness.sensitivity:AvgSensitivity",
    # complexity
    "complexity.sparseness": f"{_P}.complexity.sparseness:Sparseness",
    "complexity.entropy": f"{_P}.complexity.entropy:EntropyComplexity",
}


@hookimpl
def harness_metrics() -> Mapping[str, str]:
    """Register the core metrics."""
    return METRICS
