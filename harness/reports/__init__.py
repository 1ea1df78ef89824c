"""Reports rebuilt from the store: Markdown, CSV, JSON and a self-contained HTML page."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
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
from harness.stages import prepare_folder
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

    A newer run that has not finished (still going, or stopped by Ctrl-C) is named in a
    warning instead of replacing a complete leaderboard with its partial results.
    """
    latest = store.latest_run()
    if latest["status"] in FINISHED:
        return latest
    try:
        run = store.latest_run(finished=True)
    except StoreError:
        log.warning(
            "run %s (started %s) has not finished (still running, or interrupted: rerun the "
            "same `harness run` command to resume it) and the store holds no finished run; "
            "reporting its partial results marked incomplete.",
            latest["run_id"],
            _started(latest),
        )
        return latest
    log.warning(
        "run %s (started %s) has not finished (still running, or interrupted: rerun the same "
        "`harness run` command to resume it); reporting the latest finished run %s "
        "(started %s) instead.",
        latest["run_id"],
        _started(latest),
        run["run_id"],
        _started(run),
    )
    return run


def _write(path: Path, write: Callable[[Path], Path]) -> Path:
    """Write one report file; an OSError becomes a StoreError naming the file."""
    try:
        return write(path)
    except OSError as exc:
        raise StoreError(
            f"{path}: cannot write the report: {exc.strerror or exc} - expected a writable "
            "file path in a folder with free space"
        ) from exc


def write_reports(store: Store, out: Path) -> list[Path]:
    """Write leaderboard.md, .csv, .html, results.json and comparisons.csv of the latest finished run.

    Each file is replaced atomically. A file that cannot be written raises a
    :class:`StoreError` naming it (the results stay in the store: ``harness report``
    rewrites the files).
    """
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
    prepare_folder(out, "report folder")
    return [
        _write(
            out / "leaderboard.md",
            lambda p: write_markdown(frame, comps, p, title, meta, level=level),
        ),
        _write(out / "leaderboard.csv", lambda p: write_csv(frame, p)),
        _write(out / "results.json", lambda p: write_json(frame, p)),
        _write(
            out / "leaderboard.html",
            lambda p: write_html(
                frame, gallery, p, title, comparisons=comps, level=level, status=status
            ),
        ),
        _write(out / "comparisons.csv", lambda p: write_comparisons_csv(comps, p)),
    ]
