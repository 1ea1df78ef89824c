"""The stages of one (dataset, model) group, each cached by content key.

::

    splits -> trained checkpoint -> predictions -> classification scores
                                 -> explain set -> attributions (per explainer) -> metric scores

A failure fails only the cells that depend on the failing stage; every result
(ok, skipped or failed) is written to the store as soon as it is known.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence

from harness.draws import seed_everything
from harness.errors import DataError
from harness.metrics._engine import cache_clear
from harness.pipeline.context import RunContext, cached, fail_cells, record
from harness.pipeline.explaining import attribute, explain_set, score_explanation, select_targets
from harness.pipeline.training import predict, score_classification, train
from harness.planner import NO_EXPLAINER, Cell

__all__ = [
    "RunContext",
    "cached",
    "predict",
    "record",
    "run_group",
    "seed_everything",
    "select_targets",
]


def run_group(ctx: RunContext, dkey: str, mkey: str, cells: Sequence[Cell]) -> None:
    """Run every cell of one (dataset, model) pair: the model is trained or loaded once."""
    try:
        trained = train(ctx, dkey, mkey)
    except Exception as exc:  # a failing plugin fails its own cells, not the run
        where = f"dataset {dkey}" if isinstance(exc, DataError) else f"model {mkey} on {dkey}"
        fail_cells(ctx, cells, exc, where)
        return
    for cell in (c for c in cells if c.explainer == NO_EXPLAINER):
        try:
            score_classification(ctx, trained, cell)
        except Exception as exc:
            fail_cells(ctx, [cell], exc, f"metric {cell.metric}")
    by_explainer: dict[str, list[Cell]] = {}
    for cell in cells:
        if cell.explainer != NO_EXPLAINER:
            by_explainer.setdefault(cell.explainer, []).append(cell)
    if not by_explainer:
        return
    try:
        eset = explain_set(ctx, trained)
    except Exception as exc:
        fail_cells(
            ctx, [c for cs in by_explainer.values() for c in cs], exc, "choosing rows to explain"
        )
        return
    for ekey, ecells in by_explainer.items():
        try:
            attr_key, attribution = attribute(ctx, trained, eset, ekey)
        except Exception as exc:
            fail_cells(ctx, ecells, exc, f"explainer {ekey}")
            continue
        for cell in ecells:
            try:
                score_explanation(ctx, trained, eset, attr_key, attribution, cell)
            except Exception as exc:
                fail_cells(ctx, [cell], exc, f"metric {cell.metric}")
    del trained
    cache_clear()  # the engine's stored results belong to this group's model (device memory)
    gc.collect()
