"""Pandas frames built from the store: the records every report is written from."""

from __future__ import annotations

import json

import pandas as pd

from harness.store import Store

RECORD_COLUMNS = [
    "dataset",
    "model",
    "explainer",
    "metric",
    "kind",
    "value",
    "ci_low",
    "ci_high",
    "n",
    "higher_is_better",
    "status",
    "reason",
    "error",
    "notes",
    "plugins",
    "spec_hash",
]


def results_frame(store: Store, run_id: int | None = None) -> pd.DataFrame:
    """One row per cell of a run (the latest by default), in a stable order."""
    run = run_id if run_id is not None else store.latest_run()["run_id"]
    rows = store.query("SELECT * FROM results WHERE run_id = ?", (run,))
    frame = pd.DataFrame(rows, columns=[*RECORD_COLUMNS, "seconds", "device"])
    if frame.empty:
        return frame
    for col in ("value", "ci_low", "ci_high"):  # a missing value or interval becomes NaN
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    frame["higher_is_better"] = frame["higher_is_better"].map(
        lambda v: None if v is None else bool(v)
    )
    frame["notes"] = frame["notes"].map(lambda s: json.loads(s) if s else {})
    frame["plugins"] = frame["plugins"].map(lambda s: json.loads(s) if s else {})
    return frame.sort_values(
        ["dataset", "model", "kind", "metric", "explainer"], kind="stable"
    ).reset_index(drop=True)


def comparisons_frame(store: Store, run_id: int | None = None) -> pd.DataFrame:
    """Paired tests between explainers of a run."""
    run = run_id if run_id is not None else store.latest_run()["run_id"]
    rows = store.query(
        "SELECT dataset, model, metric, explainer_a, explainer_b, n, statistic, p_value, p_adjusted, better, test "
        "FROM comparisons WHERE run_id = ? ORDER BY dataset, model, metric, explainer_a, explainer_b",
        (run,),
    )
    return pd.DataFrame(rows)


def run_agreement(row: pd.Series) -> float | None:
    """Return the run-to-run agreement a stochastic metric noted for its cell, if any."""
    value = (row["notes"] or {}).get("run_agreement")
    return float(value) if isinstance(value, (int, float)) else None


def records(frame: pd.DataFrame) -> list[dict[str, object]]:
    """Return the records of ``results.json`` (no timings, so reruns compare equal)."""
    out = []
    for row in frame[RECORD_COLUMNS].to_dict(orient="records"):
        out.append(
            {k: (None if isinstance(v, float) and pd.isna(v) else v) for k, v in row.items()}
        )
    return out
