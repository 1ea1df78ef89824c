from __future__ import annotations

from _core_plugins import (
    Accuracy,
    BlackBox,
    CamLike,
    Gradient,
    MassInMask,
    Randomisation,
    Sentences,
    TinyCNN,
    ToyImages,
    ToyTexts,
)

import harness
from harness.contracts import Task
from harness.planner import NO_EXPLAINER, Cell, Plugins, plan


def plugins(**over: object) -> Plugins:
    images = ToyImages()
    base = {
        "datasets": {"img": (images.info(), images)},
        "models": {"cnn": TinyCNN()},
        "explainers": {"grad": Gradient(), "cam": CamLike()},
        "metrics": {"mass": MassInMask(), "acc": Accuracy()},
    }
    base.update(over)
    return Plugins(**base)  # type: ignore[arg-type]


def test_full_cross_product_when_everything_is_compatible() -> None:
    p = plan(plugins())
    assert not p.skipped
    assert set(p.cells) == {
        Cell("img", "cnn", NO_EXPLAINER, "acc"),
        Cell("img", "cnn", "grad", "mass"),
        Cell("img", "cnn", "cam", "mass"),
    }
    assert list(p.groups()) == [("img", "cnn")]


def test_black_box_model_skips_gradient_explainers_with_reason() -> None:
    p = plan(plugins(models={"bb": BlackBox()}, metrics={"mass": MassInMask()}))
    assert not p.cells
    reasons = {s.cell.explainer: s.reason for s in p.skipped}
    assert reasons == {
        "grad": "explainer needs gradients; model is black-box",
        "cam": "explainer needs gradients; model is black-box",
    }


def test_missing_masks_and_randomisation_are_named() -> None:
    no_masks = ToyImages(masks=False)
    p = plan(
        plugins(
            datasets={"img": (no_masks.info(), no_masks)},
            models={"bb": BlackBox()},
            explainers={"s": Sentences()},
            metrics={"mass": MassInMask(), "rand": Randomisation()},
        )
    )
    reasons = {s.cell.metric: s.reason for s in p.skipped}
    assert reasons["mass"] == "metric needs masks: dataset provides no ground-truth masks"
    assert reasons["rand"] == "metric needs randomisable: model cannot be randomised layer by layer"


def test_sentence_explainer_gives_no_pixels() -> None:
    p = plan(plugins(explainers={"s": Sentences()}, metrics={"mass": MassInMask()}))
    assert (
        p.skipped[0].reason
        == "metric needs pixel_attributions: explainer returns no pixel attributions"
    )


def test_modality_and_task_mismatch_skip_whole_group() -> None:
    texts = ToyTexts()
    p = plan(plugins(datasets={"txt": (texts.info(), texts)}))
    assert not p.cells and len(p.skipped) == 3
    assert all(s.reason == "model accepts image; dataset is text" for s in p.skipped)

    class MulticlassOnly(Accuracy):
        from harness.contracts import MetricTags as _T

        tags = _T(tasks=frozenset({Task.MULTICLASS}))

    multi = ToyImages(task="multilabel")
    p = plan(plugins(datasets={"ml": (multi.info(), multi)}, metrics={"acc": MulticlassOnly()}))
    assert p.skipped[0].reason == "metric does not apply to multilabel tasks"


def test_plan_is_pure_and_deterministic() -> None:
    assert plan(plugins()) == plan(plugins())


def test_explainer_reading_masks_is_skipped_on_a_dataset_without_them() -> None:
    """The ground-truth-mask control is planned out up front, not failed cell by cell."""
    oracle = harness.get_explainer("control.mask")
    sparseness = harness.get_metric("complexity.sparseness")
    no_masks = ToyImages(masks=False)
    p = plan(
        plugins(
            datasets={"img": (no_masks.info(), no_masks)},
            explainers={"mask": oracle, "grad": Gradient()},
            metrics={"acc": Accuracy(), "sparse": sparseness},
        )
    )
    reasons = {s.cell.explainer: s.reason for s in p.skipped}
    assert reasons == {"mask": "explainer needs masks: dataset provides no ground-truth masks"}
    with_masks = plan(plugins(explainers={"mask": oracle}, metrics={"sparse": sparseness}))
    assert not with_masks.skipped and Cell("img", "cnn", "mask", "sparse") in with_masks.cells
