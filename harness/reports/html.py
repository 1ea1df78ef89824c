"""``leaderboard.html``: a self-contained page for people.

Sortable tables per dataset x model, and a gallery of heat maps beside the
inputs they explain (token heat maps for text: each word shaded by its
score). Every string from the store is escaped; the page loads nothing from
the network.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from harness.planner import NO_EXPLAINER
from harness.reports.comparisons import summary
from harness.reports.flags import best_explainers, explanation_flags
from harness.reports.tables import run_agreement
from harness.stages import atomic_write

_SORT_JS = """
document.querySelectorAll('table.sortable th').forEach((th, col) => th.addEventListener('click', () => {
  const body = th.closest('table').tBodies[0];
  const rows = Array.from(body.rows);
  const asc = th.dataset.asc !== 'true'; th.dataset.asc = asc;
  const key = r => { const v = parseFloat(r.cells[col].dataset.v ?? r.cells[col].textContent); return isNaN(v) ? r.cells[col].textContent : v; };
  rows.sort((a, b) => (key(a) > key(b) ? 1 : key(a) < key(b) ? -1 : 0) * (asc ? 1 : -1));
  rows.forEach(r => body.appendChild(r));
}));
"""
_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}table{border-collapse:collapse;margin:1rem 0}
th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}th{cursor:pointer;background:#f3f3f3}
td:first-child,th:first-child{text-align:left}.bad{color:#a00}.skip{color:#888}.best{font-weight:bold}
.gallery{display:flex;flex-wrap:wrap;gap:1rem}.gallery figure{margin:0;text-align:center;font-size:.8rem}
.gallery img{width:128px;height:128px;image-rendering:pixelated}.flags{color:#a60}
.gallery p.tokens{max-width:26rem;text-align:left;line-height:1.7;margin:0}.tokens span{padding:0 .1rem}
"""
TOKENS = "tokens:"  # a gallery overlay holding a token heat map (JSON), not a PNG data URL


def _png(rgb: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb.astype(np.uint8)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _norm(a: np.ndarray) -> np.ndarray:
    lo, hi = float(a.min()), float(a.max())
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


def heatmap_png(image: np.ndarray, heat: np.ndarray) -> tuple[str, str]:
    """Return (input, overlay) PNG data URLs of a grayscale image and its heat map."""
    gray = (_norm(image) * 255)[..., None].repeat(3, axis=2)
    h = _norm(np.clip(heat, 0, None))
    colour = np.stack([255 * h, 255 * np.clip(2 * h - 1, 0, 1) * 0.6, 255 * (1 - h) * 0.2], axis=2)
    overlay = 0.55 * gray + 0.45 * colour
    return _png(gray), _png(overlay)


def token_heatmap(words: list[str], scores: list[float]) -> str:
    """Return a gallery overlay of words and their scores, scaled to [-1, 1] by the largest |score|."""
    peak = max((abs(v) for v in scores), default=0.0) or 1.0
    return TOKENS + json.dumps(
        [[w, round(v / peak, 3)] for w, v in zip(words, scores, strict=True)]
    )


def _token_paragraph(overlay: str) -> str:
    """Render a token heat map: red for positive, blue for negative evidence (escaped words)."""
    spans = []
    for word, v in json.loads(overlay.removeprefix(TOKENS)):
        colour = "220,50,40" if v >= 0 else "40,90,220"
        spans.append(
            f'<span style="background:rgba({colour},{abs(float(v)):.3f})" '
            f'title="{float(v):+.3f}">{html.escape(str(word))}</span>'
        )
    return f'<p class="tokens">{" ".join(spans)}</p>'


def _value(row: pd.Series, best: bool) -> str:
    if row["status"] != "ok":
        text = html.escape(str(row["reason"] or row["error"]))
        css = "skip" if row["status"] == "skipped" else "bad"
        return f'<td class="{css}" data-v="NaN" title="{text}">{row["status"]}</td>'
    v = _number(row["value"])
    low, high = _number(row["ci_low"]), _number(row["ci_high"])
    ci = "—" if math.isnan(low) or math.isnan(high) else f"[{low:.3f}, {high:.3f}]"
    shown = "—" if math.isnan(v) else f"{v:.3f}"
    agreement = run_agreement(row)
    rho = "" if agreement is None else f" <small>ρ={agreement:.2f}</small>"
    cls = ' class="best"' if best else ""
    return f'<td{cls} data-v="{v}">{shown} <small>{ci}</small>{rho}</td>'


def _number(value: object) -> float:
    """Return ``value`` as a float, NaN when it is missing (None or NaN)."""
    return math.nan if value is None else float(value)  # type: ignore[arg-type]


def _table(group: pd.DataFrame) -> str:
    metrics = sorted(group["metric"].unique())
    head = "".join(
        f"<th>{html.escape(m)} {'↑' if group[group['metric'] == m]['higher_is_better'].iloc[0] else '↓'}</th>"
        for m in metrics
    )
    rows = []
    best = {m: best_explainers(group[group["metric"] == m]) for m in metrics}
    for e in sorted(group["explainer"].unique()):
        cells = []
        for m in metrics:
            hit = group[(group["explainer"] == e) & (group["metric"] == m)]
            cells.append("<td>—</td>" if hit.empty else _value(hit.iloc[0], e in best[m]))
        label = "classification" if e == NO_EXPLAINER else html.escape(e)
        rows.append(f"<tr><td>{label}</td>{''.join(cells)}</tr>")
    return f'<table class="sortable"><thead><tr><th>explainer</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _flags(expl: pd.DataFrame) -> str:
    """Render the Markdown report's flags as a list; `code` spans become <code>."""
    items = [
        re.sub(r"`([^`]*)`", r"<code>\1</code>", html.escape(flag))
        for flag in explanation_flags(expl)
    ]
    return f'<ul class="flags">{"".join(f"<li>{i}</li>" for i in items)}</ul>' if items else ""


def _comparisons(comps: pd.DataFrame) -> str:
    """Render one group's paired tests: the Markdown report's sentence and significant pairs."""
    if comps.empty:
        return ""
    intro, listed = summary(comps)
    items = "".join(
        f"<li><code>{html.escape(metric)}</code>:<ul>"
        + "".join(f"<li>{html.escape(line)}</li>" for line in wins)
        + "</ul></li>"
        for metric, wins in listed
    )
    return f"<p>{html.escape(intro)}</p>" + (f"<ul>{items}</ul>" if items else "")


def _gallery(items: list[dict[str, object]]) -> str:
    figures = []
    for it in items:
        caption = html.escape(f"{it['explainer']} · {it['sample_id']} · target {it['target']}")
        overlay = str(it["overlay"])
        if overlay.startswith(TOKENS):
            body = _token_paragraph(overlay)
        elif overlay.startswith("data:image/png;base64,"):
            body = f'<img src="{overlay}" alt="{caption}">'
        else:
            continue  # nothing this page can show safely
        figures.append(f"<figure>{body}<figcaption>{caption}</figcaption></figure>")
    return f'<div class="gallery">{"".join(figures)}</div>' if figures else ""


def render_html(
    frame: pd.DataFrame,
    gallery: pd.DataFrame,
    title: str,
    *,
    comparisons: pd.DataFrame | None = None,
    level: str = "95%",
    status: str = "",
) -> str:
    """Render the whole page; ``level`` names the intervals' confidence, ``status`` an unfinished run's.

    ``comparisons`` are the run's paired tests (:func:`~harness.reports.tables.comparisons_frame`).
    """
    parts = [
        f"<h1>Leaderboard: {html.escape(title)}</h1>",
        *([f'<p class="bad">status: {html.escape(status)}</p>'] if status else []),
        f"<p>Values: mean over rows (a corpus score for generation metrics) [{level} bootstrap "
        "CI, resampling samples with all their rows]; ρ: run-to-run agreement of a stochastic metric (Spearman across rows between two independent sets of its random draws). Click a column to sort; hover a failed or skipped cell for its reason.</p>",
    ]
    for (dataset, model), group in frame.groupby(["dataset", "model"], sort=True):
        parts.append(f"<h2>{html.escape(dataset)} × {html.escape(model)}</h2>")
        cls = group[group["explainer"] == NO_EXPLAINER]
        if not cls.empty:
            parts.append(_table(cls))
        expl = group[group["explainer"] != NO_EXPLAINER]
        if not expl.empty:
            parts.append(_table(expl))
            parts.append(_flags(expl))
            if comparisons is not None and not comparisons.empty:
                sel = comparisons[
                    (comparisons["dataset"] == dataset) & (comparisons["model"] == model)
                ]
                parts.append(_comparisons(sel))
        if not gallery.empty:
            sel = gallery[(gallery["dataset"] == dataset) & (gallery["model"] == model)]
            parts.append(_gallery(sel.to_dict(orient="records")))
    body = "\n".join(parts)
    return (
        f"<!DOCTYPE html>\n<!-- generated by `harness run` / `harness report`; do not edit -->\n"
        f"<html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        f"<body>{body}<script>{_SORT_JS}</script></body></html>\n"
    )


def write_html(
    frame: pd.DataFrame,
    gallery: pd.DataFrame,
    path: Path,
    title: str,
    *,
    comparisons: pd.DataFrame | None = None,
    level: str = "95%",
    status: str = "",
) -> Path:
    """Write ``leaderboard.html``; a non-empty ``status`` marks an unfinished run."""
    page = render_html(frame, gallery, title, comparisons=comparisons, level=level, status=status)
    atomic_write(path, lambda p: p.write_text(page, encoding="utf-8"))
    return path
