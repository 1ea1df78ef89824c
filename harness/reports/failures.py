"""The failed cells of a run with the tracebacks their exceptions left in the store."""

from __future__ import annotations

from harness.store import Store


def failure_text(store: Store, run_id: int) -> str:
    """Return each failed cell of run ``run_id``: a header line, then its traceback.

    The header is ``dataset / model / explainer / metric: <error>``; a cell stored
    before tracebacks were kept shows a note instead. One line says so when no cell failed.
    """
    rows = store.query(
        "SELECT dataset, model, explainer, metric, error, traceback FROM results "
        "WHERE run_id = ? AND status = 'failed' ORDER BY dataset, model, explainer, metric",
        (run_id,),
    )
    if not rows:
        return f"no cell of run {run_id} failed\n"
    blocks = []
    for r in rows:
        trace = (r["traceback"] or "(no traceback stored for this cell)\n").rstrip("\n")
        head = f"{r['dataset']} / {r['model']} / {r['explainer']} / {r['metric']}: {r['error']}"
        blocks.append(f"{head}\n{trace}\n")
    return "\n".join(blocks)
