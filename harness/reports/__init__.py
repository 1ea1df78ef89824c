"""Reports rebuilt from the store: Markdown, CSV, JSON and a self-contained HTML page."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd

from harness.errors import StoreError
from harness.reports.comparisons import write_comparisons_csv
from harness.reports.csv import write_csv
from harness.reports.html import write_html
from harness.reports.json import write_json
from harness.reports.markdown import render_markdown, write_markdown
from harness.reports.tables import comparisons_frame, records, results_frame
from harness.store import FINISHED, Store

__all__ = [
    "INCOMPLETE",
    "records",
    "render_markdown",
    "report_run",
    "results_frame",
    "write_reports",
]

log = logging.getLogger(__name__)

INCOMPLETE = "interrupted - incomplete"  # the status reports give a run that did not finish


def _started(run: dict[str, Any]) -> str:
    started = run.get("started")
    return "?" if started is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started))


def report_run(store: Store) -> dict[str, Any]:
    """Return the run to report: the latest finished one, else the latest (incomplete) run.

    A newer run that did not finish (Ctrl-C during ``harness run``) is named in a warning
    instead of replacing a complete leaderboard with its partial results.
    """
    latest = store.latest_run()
    if latest["status"] in FINISHED:
        return latest
    try:
        run = store.latest_run(finished=True)
    except StoreError:
        log.warning(
            "run %s (started %s) did not finish and the store holds no finished run; reporting "
            "its partial results marked incomplete. Rerun the same `harness run` command to "
            "resume it.",
            latest["run_id"],
            _started(latest),
        )
        return latest
    log.warning(
        "run %s (started %s) did not finish; reporting the latest finished run %s (started %s) "
        "instead. Rerun the same `harness run` command to resume it.",
        latest["run_id"],
        _started(latest),
        run["run_id"],
        _started(run),
    )
    return run


def write_reports(store: Store, out: Path) -> list[Path]:
    """Write leaderboard.md, .csv, .html, results.json and comparisons.csv of the latest finished run."""
    run = report_run(store)
    frame = results_frame(store, run["run_id"])
    comps = comparisons_frame(store, run["run_id"])
    gallery = pd.DataFrame(
        store.query(
            "SELECT dataset, model, explainer, sample_id, target, overlay FROM gallery WHERE run_id = ? "
            "ORDER BY dataset, model, explainer, sample_id, target",
            (run["run_id"],),
        )
    )
    status = "" if run["status"] in FINISHED else INCOMPLETE
    meta = {
        "spec": Path(run["spec_file"] or "").name,
        "spec hash": run["spec_hash"],
        "harness": run["harness_version"],
        "device": run["device"],
        "status": status,
    }
    confidence = run.get("confidence") or 0.95  # stores written before runs recorded it
    level = f"{100 * confidence:g}%"
    title = run["benchmark"] or ""
    out.mkdir(parents=True, exist_ok=True)
    return [
        write_markdown(frame, comps, out / "leaderboard.md", title, meta, level=level),
        write_csv(frame, out / "leaderboard.csv"),
        write_json(frame, out / "results.json"),
        write_html(
            frame,
            gallery,
            out / "leaderboard.html",
            title,
            comparisons=comps,
            level=level,
            status=status,
        ),  # fmt: skip
        write_comparisons_csv(comps, out / "comparisons.csv"),
    ]
