"""Reports rebuilt from the store: Markdown, CSV, JSON and a self-contained HTML page."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.reports.csv import write_csv
from harness.reports.html import write_html
from harness.reports.json import write_json
from harness.reports.markdown import render_markdown, write_markdown
from harness.reports.tables import comparisons_frame, records, results_frame
from harness.store import Store

__all__ = ["records", "render_markdown", "results_frame", "write_reports"]


def write_reports(store: Store, out: Path) -> list[Path]:
    """Write leaderboard.md, .csv, .html and results.json for the latest run."""
    run = store.latest_run()
    frame = results_frame(store, run["run_id"])
    comps = comparisons_frame(store, run["run_id"])
    gallery = pd.DataFrame(
        store.query(
            "SELECT dataset, model, explainer, sample_id, target, overlay FROM gallery WHERE run_id = ? "
            "ORDER BY dataset, model, explainer, sample_id, target",
            (run["run_id"],),
        )
    )
    meta = {
        "spec": Path(run["spec_file"] or "").name,
        "spec hash": run["spec_hash"],
        "harness": run["harness_version"],
        "device": run["device"],
    }
    confidence = run.get("confidence") or 0.95  # stores written before runs recorded it
    level = f"{100 * confidence:g}%"
    title = run["benchmark"] or ""
    out.mkdir(parents=True, exist_ok=True)
    return [
        write_markdown(frame, comps, out / "leaderboard.md", title, meta, level=level),
        write_csv(frame, out / "leaderboard.csv"),
        write_json(frame, out / "results.json"),
        write_html(frame, gallery, out / "leaderboard.html", title, level=level),
    ]
