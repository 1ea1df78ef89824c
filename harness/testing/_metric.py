"""Metric checks: declarations, bounds, direction, determinism, needs, no side effects."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import torch

from harness.contracts import (
    ClassificationMetric,
    ExplanationMetric,
    GenerationMetric,
    Metric,
    MetricKind,
    Need,
    Scores,
)
from harness.errors import CapabilityError, HarnessError
from harness.testing._common import Check, close, fail
from harness.testing._setups import (
    MetricSetup,
    classification_inputs,
    generation_inputs,
    metric_setup,
)
from harness.testing._state import same_state, seeded, snapshot

_BASES = (Metric, ClassificationMetric, GenerationMetric, ExplanationMetric)
_CORPUS_KINDS = {
    ClassificationMetric: MetricKind.CLASSIFICATION,
    GenerationMetric: MetricKind.TEXT_GENERATION,
}


def _within(metric: Metric, check: str, what: str, value: float) -> None:
    if not math.isfinite(value):
        fail(metric, check, what, "a finite number", value)
    if (
        metric.bounds is not None
        and not metric.bounds[0] - 1e-9 <= value <= metric.bounds[1] + 1e-9
    ):
        fail(metric, check, what, f"a value within bounds {metric.bounds}", value)


def check_metric_declarations(metric: Metric) -> None:
    """Check ``higher_is_better`` is declared, ``bounds`` sane, ``tags.kind`` fitting the base."""
    name = "check_metric_declarations"
    owner = next(c for c in type(metric).__mro__ if "higher_is_better" in vars(c))
    if owner in _BASES or not isinstance(metric.higher_is_better, bool):
        fail(
            metric,
            name,
            "higher_is_better",
            "a bool declared on the plugin class",
            f"{metric.higher_is_better!r} inherited from {owner.__name__}",
        )
    bounds = metric.bounds
    if bounds is not None and not (
        isinstance(bounds, tuple) and len(bounds) == 2
        and all(isinstance(b, int | float) and not math.isnan(b) for b in bounds)
        and bounds[0] < bounds[1]
    ):  # fmt: skip
        fail(metric, name, "bounds", "None or (low, high) with low < high", bounds)
    kind = metric.get_tags().kind
    for base, expected in _CORPUS_KINDS.items():
        if isinstance(metric, base) and kind is not expected:
            fail(metric, name, "tags.kind", expected.value, kind.value)
    if isinstance(metric, ExplanationMetric) and kind in _CORPUS_KINDS.values():
        fail(
            metric, name, "tags.kind of an explanation metric", "an explanation family", kind.value
        )
    if not isinstance(metric, ClassificationMetric | GenerationMetric | ExplanationMetric):
        fail(
            metric,
            name,
            "base class",
            "ClassificationMetric, GenerationMetric or ExplanationMetric",
            type(metric).__mro__[1].__name__,
        )


def check_classification_metric_values(metric: ClassificationMetric) -> None:
    """For each declared task: a finite float within bounds, the same on a repeat."""
    name = "check_classification_metric_values"
    for task in sorted(metric.get_tags().tasks, key=lambda t: t.value):
        data = classification_inputs(task)
        first = metric.clone().compute(data.labels, data.probs, task)
        _within(metric, name, f"compute() on {task.value} fixtures", first)
        if metric.clone().compute(data.labels, data.probs, task) != first:
            fail(
                metric, name, f"compute() repeated on {task.value} fixtures", first, "another value"
            )


def check_classification_metric_direction(metric: ClassificationMetric) -> None:
    """Perfect predictions score better than inverted ones, in the declared direction."""
    for task in sorted(metric.get_tags().tasks, key=lambda t: t.value):
        data = classification_inputs(task)
        good = metric.clone().compute(data.labels, data.perfect, task)
        bad = metric.clone().compute(data.labels, data.inverted, task)
        if (good > bad) != metric.higher_is_better or good == bad:
            fail(
                metric,
                "check_classification_metric_direction",
                f"perfect vs inverted predictions on {task.value} fixtures",
                f"perfect {'higher' if metric.higher_is_better else 'lower'} (higher_is_better="
                f"{metric.higher_is_better})",
                f"{good} vs {bad}",
            )


def check_generation_metric_values(metric: GenerationMetric) -> None:
    """On toy references: finite within bounds, repeatable, and perfect beats unrelated."""
    name = "check_generation_metric_values"
    data = generation_inputs()
    good = metric.clone().compute(data.perfect, data.references)
    bad = metric.clone().compute(data.unrelated, data.references)
    _within(metric, name, "compute() on perfect hypotheses", good)
    _within(metric, name, "compute() on unrelated hypotheses", bad)
    if metric.clone().compute(data.perfect, data.references) != good:
        fail(metric, name, "compute() repeated", good, "another value")
    if (good > bad) != metric.higher_is_better or good == bad:
        fail(
            metric,
            name,
            "perfect vs unrelated sentences",
            f"perfect {'higher' if metric.higher_is_better else 'lower'}",
            f"{good} vs {bad}",
        )


def _score(
    metric: ExplanationMetric, setup: MetricSetup, *, seed: int = 0, **change: Any
) -> Scores:
    inputs: dict[str, Any] = {
        "model": setup.model,
        "batch": setup.batch,
        "targets": setup.targets,
        "attribution": setup.attribution,
        "explainer": setup.explainer,
    }
    inputs.update(change)
    with seeded(seed):
        return metric.clone().evaluate(
            inputs["model"], inputs["batch"], inputs["targets"], inputs["attribution"],
            explainer=inputs["explainer"],
        )  # fmt: skip


def check_metric_scores(metric: ExplanationMetric) -> None:
    """Per-row (N,) finite scores within bounds; finite curves and notes."""
    name = "check_metric_scores"
    setup = metric_setup(metric)
    scores = _score(metric, setup)
    for i, value in enumerate(scores.values.tolist()):
        _within(metric, name, f"score of row {i}", value)
    for key, curve in scores.curves.items():
        if not isinstance(curve, torch.Tensor) or not bool(torch.isfinite(curve.double()).all()):
            fail(metric, name, f"curves[{key!r}]", "a finite tensor", curve)
    for key, note in scores.notes.items():
        if not isinstance(note, int | float) or not math.isfinite(note):
            fail(metric, name, f"notes[{key!r}]", "a finite number", note)


def check_metric_zero_map(metric: ExplanationMetric) -> None:
    """Check that a row whose map is all zeros (Grad-CAM after its ReLU can give one) scores finitely."""
    name = "check_metric_zero_map"
    setup = metric_setup(metric)
    pixels, tokens = (
        None if t is None else t.clone().index_fill_(0, torch.tensor([0], device=t.device), 0)
        for t in (setup.attribution.pixels, setup.attribution.tokens)
    )
    if pixels is None and tokens is None:
        return  # sentences only: no map to zero
    attribution = replace(setup.attribution, pixels=pixels, tokens=tokens)
    try:
        scores = _score(metric, setup, attribution=attribution)
    except HarnessError as exc:
        fail(metric, name, "scores with row 0's map all zeros", "finite scores (add an eps)", exc)
    for i, value in enumerate(scores.values.tolist()):
        _within(metric, name, f"score of row {i} (row 0's map all zeros)", value)


def _check_seeds(
    metric: ExplanationMetric, check: str, seeds: tuple[int, int], what: str, expected: str
) -> None:
    """Fail ``check`` unless two runs under ``seeds`` give the same scores."""
    setup = metric_setup(metric)
    a, b = (_score(metric, setup, seed=seed).values for seed in seeds)
    if not close(a, b, rtol=1e-6, atol=1e-9):
        fail(metric, check, what, expected, f"{a.tolist()} vs {b.tolist()}")


def check_metric_deterministic(metric: ExplanationMetric) -> None:
    """Check that a metric tagged deterministic scores the same whatever the RNG state."""
    _check_seeds(
        metric,
        "check_metric_deterministic",
        (1, 2),
        "scores under two different seeds",
        "identical scores (tags.deterministic is True)",
    )


def check_metric_reproducible(metric: ExplanationMetric) -> None:
    """Under the same global seed (as the runner sets it), two runs score the same."""
    _check_seeds(
        metric,
        "check_metric_reproducible",
        (7, 7),
        "scores of two runs after the same seed",
        "identical scores",
    )


def check_metric_batch_independence(metric: ExplanationMetric) -> None:
    """Check that a row scored alone gets the score it gets within its batch."""
    setup = metric_setup(metric)
    together = _score(metric, setup).values
    for i in range(len(setup.batch)):
        alone = _score(
            metric,
            setup,
            batch=setup.batch.index([i]),
            targets=setup.targets[i : i + 1],
            attribution=setup.attribution.index([i]),
        ).values
        if not close(together[i : i + 1], alone, rtol=1e-4, atol=1e-6):
            fail(
                metric,
                "check_metric_batch_independence",
                f"row {i} scored alone",
                f"{float(together[i])} as within the batch (normalise per row)",
                float(alone[0]),
            )


def _stripped(setup: MetricSetup) -> Iterator[tuple[Need, str, dict[str, Any]]]:
    batch, attribution = setup.batch, setup.attribution
    for need, field, without in (
        (Need.MASKS, "masks", replace(batch, masks=None)),
        (Need.RATIONALES, "rationales", replace(batch, rationales=None)),
        (Need.REFERENCES, "references", replace(batch, references=None)),
    ):
        if getattr(batch, field) is not None:
            yield need, f"batch.{field}", {"batch": without}
    present = [
        (Need.PIXEL_ATTRIBUTIONS, "pixels", replace(attribution, pixels=None)),
        (Need.TOKEN_ATTRIBUTIONS, "tokens", replace(attribution, tokens=None)),
        (Need.SENTENCES, "sentences", replace(attribution, sentences=None)),
    ]
    present = [p for p in present if getattr(attribution, p[1]) is not None]
    for need, field, without_field in present if len(present) > 1 else []:
        yield need, f"attribution.{field}", {"attribution": without_field}
    yield Need.EXPLAINER, "the explainer", {"explainer": None}
    if setup.model.label_randomised is not None:
        alone = copy.copy(setup.model)
        alone.label_randomised = None
        yield Need.LABEL_RANDOMISED_MODEL, "model.label_randomised", {"model": alone}


def check_metric_needs_declared(metric: ExplanationMetric) -> None:
    """Check a missing declared input raises CapabilityError and undeclared inputs go unused."""
    name = "check_metric_needs_declared"
    setup = metric_setup(metric)
    needs = metric.get_tags().needs
    for need, what, change in _stripped(setup):
        try:
            _score(metric, setup, **change)
        except CapabilityError:
            if need not in needs:
                fail(
                    metric,
                    name,
                    f"scoring without {what}",
                    f"scores (Need.{need.name} is not declared)",
                    "CapabilityError",
                )
            continue
        except Exception as exc:  # noqa: BLE001 - any other failure means an undeclared need
            if need in needs:
                fail(
                    metric,
                    name,
                    f"scoring without {what}",
                    f"CapabilityError (declared Need.{need.name})",
                    f"{type(exc).__name__}: {exc}",
                )
            fail(
                metric,
                name,
                f"scoring without {what}",
                f"scores, or declare Need.{need.name}",
                f"{type(exc).__name__}: {exc}",
            )
        if need in needs:
            fail(
                metric,
                name,
                f"scoring without {what}",
                f"CapabilityError (declared Need.{need.name})",
                "scores",
            )


def check_metric_does_not_mutate(metric: ExplanationMetric) -> None:
    """Scoring leaves the model (weights, modes, hooks, logits), batch and attribution unchanged."""
    setup = metric_setup(metric)
    before = snapshot(setup.model, setup.batch)
    attribution = [
        t.clone() for t in (setup.attribution.pixels, setup.attribution.tokens) if t is not None
    ]
    _score(metric, setup)
    after = snapshot(setup.model, setup.batch)
    changed = [k for k in before if not same_state(before[k], after[k])]
    now = [t for t in (setup.attribution.pixels, setup.attribution.tokens) if t is not None]
    if not same_state(attribution, now):
        changed.append("attribution")
    if changed:
        fail(
            metric,
            "check_metric_does_not_mutate",
            "model, batch and attribution after scoring",
            "unchanged (randomise copies, perturb clones)",
            f"changed {', '.join(changed)}",
        )


def checks(metric: Metric) -> Iterator[tuple[str, Check]]:
    """Yield the metric checks that apply to ``metric``'s base class and tags."""
    selected: list[Any] = [check_metric_declarations]
    if isinstance(metric, ClassificationMetric):
        selected += [check_classification_metric_values, check_classification_metric_direction]
    elif isinstance(metric, GenerationMetric):
        selected += [check_generation_metric_values]
    elif isinstance(metric, ExplanationMetric):
        selected += [check_metric_scores, check_metric_zero_map, check_metric_reproducible]
        if metric.get_tags().deterministic:
            selected += [check_metric_deterministic, check_metric_batch_independence]
        selected += [check_metric_needs_declared, check_metric_does_not_mutate]
    for check in selected:
        yield check.__name__, check
