"""Expand a spec into cells and keep the compatible ones; pure, no I/O.

A cell is (dataset, model, explainer, metric); classification metrics have no
explainer (``NO_EXPLAINER``). Compatibility is declared by tags, never guessed;
every incompatible cell is returned as :class:`Skipped` with its reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from harness.contracts import (
    Dataset,
    DatasetInfo,
    Explainer,
    Metric,
    MetricKind,
    Modality,
    Model,
    Need,
    Output,
    Provides,
    SupportsTargetLayer,
)

NO_EXPLAINER = "-"

_IMAGE_MODALITIES = {Modality.IMAGE, Modality.IMAGE_TEXT}
_TEXT_MODALITIES = {Modality.TEXT, Modality.IMAGE_TEXT}


@dataclass(frozen=True)
class Cell:
    """One unit of result: a metric for a dataset, model and (maybe) explainer."""

    dataset: str
    model: str
    explainer: str
    metric: str


@dataclass(frozen=True)
class Skipped:
    """A cell that cannot run, with the unmet need by name."""

    cell: Cell
    reason: str


@dataclass(frozen=True)
class Plugins:
    """The instantiated plugins of a spec, keyed by their spec key (label or name)."""

    datasets: Mapping[str, tuple[DatasetInfo, Dataset]]
    models: Mapping[str, Model]
    explainers: Mapping[str, Explainer]
    metrics: Mapping[str, Metric]


@dataclass(frozen=True)
class Plan:
    """The cells to run and the ones skipped."""

    cells: tuple[Cell, ...]
    skipped: tuple[Skipped, ...]

    def groups(self) -> dict[tuple[str, str], list[Cell]]:
        """Cells grouped by (dataset, model), so each model is trained and loaded once."""
        out: dict[tuple[str, str], list[Cell]] = {}
        for cell in self.cells:
            out.setdefault((cell.dataset, cell.model), []).append(cell)
        return out


def model_reason(model: Model, info: DatasetInfo) -> str | None:
    """Why ``model`` cannot run on a dataset described by ``info`` (None if it can)."""
    tags = model.get_tags()
    if info.modality not in tags.modalities:
        accepted = ", ".join(sorted(m.value for m in tags.modalities))
        return f"model accepts {accepted}; dataset is {info.modality.value}"
    if info.task not in tags.tasks:
        return f"model does not support {info.task.value} tasks"
    return None


def _has_target_layer(model: Model) -> bool:
    return isinstance(model, SupportsTargetLayer) and bool(
        getattr(model, "cam_layer", None) or model.get_tags().target_layer
    )


# needs a dataset meets by providing ground truth (for metrics, and explainers such as control.mask)
_DATA_NEEDS = {
    Need.MASKS: (Provides.MASKS, "ground-truth masks"),
    Need.RATIONALES: (Provides.RATIONALES, "token rationales"),
    Need.REFERENCES: (Provides.REFERENCES, "reference sentences"),
}


def explainer_reason(explainer: Explainer, model: Model, info: DatasetInfo) -> str | None:
    """Why ``explainer`` cannot explain ``model`` on this dataset (None if it can)."""
    tags = explainer.get_tags()
    if info.modality not in tags.modalities:
        return f"explainer handles {', '.join(sorted(m.value for m in tags.modalities))}; dataset is {info.modality.value}"
    if Need.GRADIENTS in tags.needs and not model.get_tags().differentiable:
        return "explainer needs gradients; model is black-box"
    if Need.TARGET_LAYER in tags.needs and not _has_target_layer(model):
        return "explainer needs a target layer; model declares none"
    for need, (provides, what) in _DATA_NEEDS.items():
        if need in tags.needs and provides not in info.provides:
            return f"explainer needs {need.value}: dataset provides no {what}"
    return None


def _needs_reason(
    needs: frozenset[Need], explainer: Explainer | None, model: Model, info: DatasetInfo
) -> str | None:
    outputs = explainer.get_tags().output if explainer is not None else frozenset()
    provided = {need: provides in info.provides for need, (provides, _) in _DATA_NEEDS.items()}
    provided |= {
        Need.PIXEL_ATTRIBUTIONS: Output.PIXEL in outputs and info.modality in _IMAGE_MODALITIES,
        Need.TOKEN_ATTRIBUTIONS: Output.TOKEN in outputs and info.modality in _TEXT_MODALITIES,
        Need.SENTENCES: Output.SENTENCE in outputs,
        Need.GRADIENTS: model.get_tags().differentiable,
        Need.RANDOMISABLE: model.get_tags().randomisable,
        Need.TARGET_LAYER: _has_target_layer(model),
        Need.EXPLAINER: explainer is not None,
    }
    what = {need: f"dataset provides no {desc}" for need, (_, desc) in _DATA_NEEDS.items()}
    what |= {
        Need.PIXEL_ATTRIBUTIONS: "explainer returns no pixel attributions",
        Need.TOKEN_ATTRIBUTIONS: "explainer returns no token attributions",
        Need.SENTENCES: "explainer generates no sentences",
        Need.GRADIENTS: "model is black-box (no gradients)",
        Need.RANDOMISABLE: "model cannot be randomised layer by layer",
        Need.TARGET_LAYER: "model declares no target layer",
        Need.EXPLAINER: "no explainer",
    }
    for need in sorted(needs, key=lambda n: n.value):
        if not provided.get(need, True):
            return f"metric needs {need.value}: {what[need]}"
    return None


def metric_reason(
    metric: Metric, explainer: Explainer | None, model: Model, info: DatasetInfo
) -> str | None:
    """Why ``metric`` cannot score this cell (None if it can)."""
    tags = metric.get_tags()
    if info.modality not in tags.modalities:
        return f"metric does not apply to {info.modality.value} data"
    if info.task not in tags.tasks:
        return f"metric does not apply to {info.task.value} tasks"
    needs = tags.needs
    if tags.kind is MetricKind.TEXT_GENERATION:
        needs = needs | {Need.SENTENCES, Need.REFERENCES}
    return _needs_reason(needs, explainer, model, info)


def _place(cell: Cell, reason: str | None, cells: list[Cell], skipped: list[Skipped]) -> None:
    if reason:
        skipped.append(Skipped(cell, reason))
    else:
        cells.append(cell)


def plan(plugins: Plugins) -> Plan:
    """Expand datasets x models x explainers x metrics into cells and skipped cells."""
    cells: list[Cell] = []
    skipped: list[Skipped] = []
    per_sample = {
        k: m
        for k, m in plugins.metrics.items()
        if m.get_tags().kind is not MetricKind.CLASSIFICATION
    }
    corpus = {k: m for k, m in plugins.metrics.items() if k not in per_sample}
    for dkey, (info, _) in plugins.datasets.items():
        for mkey, model in plugins.models.items():
            reason = model_reason(model, info)
            for metric_key, metric in corpus.items():
                cell = Cell(dkey, mkey, NO_EXPLAINER, metric_key)
                _place(cell, reason or metric_reason(metric, None, model, info), cells, skipped)
            for ekey, explainer in plugins.explainers.items():
                e_reason = reason or explainer_reason(explainer, model, info)
                for metric_key, metric in per_sample.items():
                    cell = Cell(dkey, mkey, ekey, metric_key)
                    why = e_reason or metric_reason(metric, explainer, model, info)
                    _place(cell, why, cells, skipped)
    return Plan(tuple(cells), tuple(skipped))
