"""The paired tests between explainers, as every report shows them.

Markdown and HTML list the significant differences per metric under the same
sentence (test, correction, family, count), one line per winning explainer
with the explainers it beats; ``comparisons.csv`` holds every pair with its
statistic and p-values, so the marks can be checked.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.stages import atomic_write
from harness.stats import ALPHA

COLUMNS = [
    "dataset",
    "model",
    "metric",
    "explainer_a",
    "explainer_b",
    "n",
    "statistic",
    "p_value",
    "p_adjusted",
    "significant",
    "better",
    "test",
]


def summary(comps: pd.DataFrame) -> tuple[str, list[tuple[str, list[str]]]]:
    """Return the sentence introducing one group's tests and its significant wins per metric.

    A metric's lines read ``"better > worse, worse, ..."``: one line per
    explainer that significantly beats another, most wins first (ties by name),
    the beaten ones in name order. Metrics without a significant pair are left out.
    """
    sig = comps[comps["p_adjusted"] < ALPHA]
    intro = (
        "Paired Wilcoxon signed-rank tests on per-sample scores (a sample's rows averaged), "
        "Holm-corrected per metric; "
        f"{len(sig)} of {len(comps)} differences significant at p < {ALPHA:g} "
        "(each line: an explainer > those it beats):"
    )
    listed = []
    for metric, rows in sig.groupby("metric", sort=True):
        beaten: dict[str, list[str]] = {}
        for _, c in rows.iterrows():
            worse = c["explainer_b"] if c["better"] == c["explainer_a"] else c["explainer_a"]
            beaten.setdefault(str(c["better"]), []).append(str(worse))
        order = sorted(beaten, key=lambda e: (-len(beaten[e]), e))
        listed.append((str(metric), [f"{e} > {', '.join(sorted(beaten[e]))}" for e in order]))
    return intro, listed


def write_comparisons_csv(comps: pd.DataFrame, path: Path) -> Path:
    """Write every paired test of the run, with ``significant`` (Holm-adjusted p < ALPHA)."""
    flat = pd.DataFrame(columns=COLUMNS) if comps.empty else comps.copy()
    if not comps.empty:
        flat["significant"] = flat["p_adjusted"] < ALPHA
    atomic_write(path, lambda p: flat[COLUMNS].to_csv(p, index=False, float_format="%.6g"))
    return path
