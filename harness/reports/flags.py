"""Warnings about the metrics themselves, computed from the control explainers' scores.

Three checks run per dataset x model on the explanation cells:

- the controls (explainers registered as ``control.*``) should rank last: a
  metric where a control scores at least as well as the worst real method is
  flagged. The ground-truth mask ``control.mask`` is a ceiling, not a floor,
  so it is left out of this check;
- on localisation metrics, the ground-truth mask must score better than
  random attributions (``control.random``) with non-overlapping bootstrap
  intervals: a metric that cannot separate a perfect map from noise is
  flagged. Other kinds are not checked, because the mask says nothing about
  the model (faithfulness, sanity, robustness) or is not meant to be simple
  (complexity);
- on the same metrics, no method should score clearly better than the mask
  (intervals apart): a metric that ranks a method above the perfect map
  rewards something besides localisation.

Both Markdown and HTML reports show the same lines, and neither marks the
mask as the best explainer of a column (:func:`contenders`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import pandas as pd

CONTROL_PREFIX = "control."
MASK_CONTROL = "control.mask"
RANDOM_CONTROL = "control.random"
SEPARATION_KINDS = frozenset({"localisation"})


def plugin_name(row: pd.Series) -> str:
    """Return the registered explainer name of a result row (its spec key if unrecorded).

    The store records provenance as ``"<name> v<version> (<distribution> <version>)"``.
    """
    plugins = row["plugins"] if isinstance(row["plugins"], dict) else {}
    recorded = str(plugins.get("explainer") or row["explainer"])
    return recorded.split(" ", 1)[0]


def is_control(row: pd.Series) -> bool:
    """Return True for rows of a control explainer (spec key or registered name ``control.*``)."""
    return str(row["explainer"]).startswith(CONTROL_PREFIX) or plugin_name(row).startswith(
        CONTROL_PREFIX
    )


def is_mask_control(row: pd.Series) -> bool:
    """Return True for rows of the ground-truth mask control."""
    return plugin_name(row) == MASK_CONTROL


def contenders(col: pd.DataFrame) -> pd.DataFrame:
    """Return the ok rows that compete for "best": all but the ground-truth mask (a ceiling)."""
    ok = col[col["status"] == "ok"]
    if ok.empty:
        return ok
    return ok[~ok.apply(is_mask_control, axis=1).astype(bool)]


def best_explainers(col: pd.DataFrame) -> set[str]:
    """Return the explainers holding a metric column's best value among its :func:`contenders`.

    Empty when fewer than two compete; the ground-truth mask is never among them,
    even when it ties the best method.
    """
    ok = contenders(col)
    if len(ok) < 2:
        return set()
    hib = bool(ok["higher_is_better"].iloc[0])
    best = ok["value"].max() if hib else ok["value"].min()
    return set(ok.loc[ok["value"] == best, "explainer"])


def _num(v: float) -> str:
    return "n/a" if math.isnan(v) else f"{v:.3f}"


def control_flags(expl: pd.DataFrame) -> list[str]:
    """Flag metrics where a floor control scores at least as well as the worst real method."""
    flags = []
    for metric, col in expl.groupby("metric", sort=True):
        ok = col[col["status"] == "ok"]
        if ok.empty:
            continue
        control = ok.apply(is_control, axis=1).astype(bool)
        mask = ok.apply(is_mask_control, axis=1).astype(bool)
        controls, others = ok[control & ~mask], ok[~control]
        if controls.empty or others.empty:
            continue
        hib = bool(ok["higher_is_better"].iloc[0])
        worst_method = others["value"].min() if hib else others["value"].max()
        beaten = controls[
            (controls["value"] >= worst_method) if hib else (controls["value"] <= worst_method)
        ]
        if not beaten.empty:
            names = ", ".join(sorted(beaten["explainer"]))
            flags.append(
                f"⚠ `{metric}` does not rank the controls last: {names} score at least as well as a method."
            )
    return flags


def _bounds(rows: pd.DataFrame, pick_high: bool) -> tuple[float, float, float]:
    """Return (value, interval low, interval high) of the row that is best for the other side.

    ``pick_high`` picks the row with the highest value; a missing interval is NaN,
    which compares false, so it never counts as separated.
    """
    row = rows.loc[rows["value"].idxmax() if pick_high else rows["value"].idxmin()]
    low, high = (math.nan if row[c] is None else float(row[c]) for c in ("ci_low", "ci_high"))
    return float(row["value"]), low, high


def _localisation_cells(expl: pd.DataFrame) -> Iterator[tuple[str, pd.DataFrame, bool]]:
    """Yield (metric, its ok cells, higher is better) for each metric the mask can check."""
    for metric, col in expl.groupby("metric", sort=True):
        ok = col[(col["status"] == "ok") & col["kind"].isin(SEPARATION_KINDS)]
        if not ok.empty:
            yield str(metric), ok, bool(ok["higher_is_better"].iloc[0])


def separation_flags(expl: pd.DataFrame) -> list[str]:
    """Flag localisation metrics where the ground-truth mask does not beat random attributions.

    Separated means the two bootstrap intervals do not overlap, the mask's on
    the better side (a missing interval, e.g. from a single row, never separates): a mask that is better on average but within random's
    interval (e.g. top-k intersection with k far above the lesion's area) is
    flagged. With several instances of either control, the worst mask is
    compared with the best random map, so one flag covers every pair that fails.
    """
    flags = []
    for metric, ok, hib in _localisation_cells(expl):
        names = ok.apply(plugin_name, axis=1)
        masks, randoms = ok[names == MASK_CONTROL], ok[names == RANDOM_CONTROL]
        if masks.empty or randoms.empty:
            continue
        mask, mask_low, mask_high = _bounds(masks, pick_high=not hib)
        rand, rand_low, rand_high = _bounds(randoms, pick_high=hib)
        separated = mask_low > rand_high if hib else mask_high < rand_low
        if not separated:
            bounds = (mask_low, mask_high, rand_low, rand_high)
            if any(math.isnan(b) for b in bounds):
                why = "an interval is missing"
            elif (mask_high < rand_low) if hib else (mask_low > rand_high):
                why = "the mask scores worse than random"
            else:
                why = "the intervals overlap"
            flags.append(
                f"⚠ `{metric}` cannot separate the ground-truth mask from random attributions "
                f"(mask {_num(mask)} [{_num(mask_low)}, {_num(mask_high)}] vs random "
                f"{_num(rand)} [{_num(rand_low)}, {_num(rand_high)}]: {why})."
            )
    return flags


def ceiling_flags(expl: pd.DataFrame) -> list[str]:
    """Flag localisation metrics on which a method scores clearly better than the ground-truth mask.

    The mask is the perfect localisation, so a method whose bootstrap interval
    lies wholly on the better side of the mask's (intervals apart, as in
    :func:`separation_flags`) shows that the metric rewards something else
    (e.g. the map's spread).
    """
    flags = []
    for metric, ok, hib in _localisation_cells(expl):
        masks = ok[ok.apply(is_mask_control, axis=1).astype(bool)]
        methods = ok[~ok.apply(is_control, axis=1).astype(bool)]
        if masks.empty or methods.empty:
            continue
        mask, mask_low, mask_high = _bounds(masks, pick_high=hib)
        ahead = methods[
            (methods["ci_low"].astype(float) > mask_high)
            if hib
            else (methods["ci_high"].astype(float) < mask_low)
        ]
        if not ahead.empty:
            flags.append(
                f"⚠ `{metric}` scores {', '.join(sorted(ahead['explainer']))} better than the "
                f"ground-truth mask ({_num(mask)} [{_num(mask_low)}, {_num(mask_high)}]): it "
                "rewards more than localisation."
            )
    return flags


def explanation_flags(expl: pd.DataFrame) -> list[str]:
    """Return every flag of one dataset x model's explanation cells, controls first."""
    return control_flags(expl) + separation_flags(expl) + ceiling_flags(expl)
