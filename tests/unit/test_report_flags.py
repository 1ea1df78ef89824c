"""Leaderboard flags: controls rank last (except the mask), the mask must beat random."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from harness.reports import render_markdown, write_reports
from harness.reports.flags import (
    ceiling_flags,
    control_flags,
    explanation_flags,
    separation_flags,
)
from harness.reports.html import render_html
from harness.store import ResultRow, Store

NOT_SEPARATED = (
    "⚠ `loc.blind` cannot separate the ground-truth mask from random attributions "
    "(mask 0.400 [0.390, 0.410] vs random 0.400 [0.390, 0.410]: the intervals overlap)."
)


def _row(explainer: str, metric: str, value: float, *, hib: bool = True, **kw: object) -> dict:
    base: dict[str, object] = {
        "dataset": "d",
        "model": "m",
        "explainer": explainer,
        "metric": metric,
        "kind": "localisation",
        "value": value,
        "ci_low": value - 0.01,
        "ci_high": value + 0.01,
        "n": 10,
        "higher_is_better": hib,
        "status": "ok",
        "reason": None,
        "error": None,
        "notes": {},
        "plugins": {},
    }
    return {**base, **kw}


def _frame() -> pd.DataFrame:
    """``loc.good`` separates mask from random; ``loc.blind`` (a tie) does not."""
    return pd.DataFrame(
        [
            _row("captum.grad_cam", "loc.good", 0.6),
            _row("control.mask", "loc.good", 1.0),
            _row("control.random", "loc.good", 0.1),
            _row("captum.grad_cam", "loc.blind", 0.405),
            _row("control.mask", "loc.blind", 0.4),
            _row("control.random", "loc.blind", 0.4),
        ]
    )


def test_exactly_the_metric_that_cannot_separate_is_flagged() -> None:
    assert separation_flags(_frame()) == [NOT_SEPARATED]


def test_mask_is_exempt_from_the_controls_rank_last_check() -> None:
    # the mask beats Grad-CAM on loc.good, random ranks below Grad-CAM on both metrics
    assert control_flags(_frame()) == []
    assert explanation_flags(_frame()) == [NOT_SEPARATED]
    # a floor control beating a method is still flagged
    worse = pd.concat([_frame(), pd.DataFrame([_row("control.sobel", "loc.good", 0.7)])])
    assert control_flags(worse) == [
        "⚠ `loc.good` does not rank the controls last: "
        "control.sobel score at least as well as a method."
    ]


def test_direction_is_respected_for_lower_is_better_metrics() -> None:
    frame = pd.DataFrame(
        [
            _row("control.mask", "loc.error", 0.2, hib=False),
            _row("control.random", "loc.error", 0.7, hib=False),
            _row("control.mask", "loc.inverted", 0.9, hib=False),
            _row("control.random", "loc.inverted", 0.3, hib=False),
        ]
    )
    assert separation_flags(frame) == [
        "⚠ `loc.inverted` cannot separate the ground-truth mask from random attributions "
        "(mask 0.900 [0.890, 0.910] vs random 0.300 [0.290, 0.310]: the mask scores worse than "
        "random)."
    ]


def test_a_method_clearly_better_than_the_mask_is_flagged_in_either_direction() -> None:
    frame = pd.DataFrame(
        [
            # higher is better: Grad-CAM's interval lies wholly above the mask's
            _row("control.mask", "loc.spread", 0.5),
            _row("captum.grad_cam", "loc.spread", 0.7),
            _row("zennit.lrp", "loc.spread", 0.515),  # overlaps the mask's interval: no flag
            # lower is better: LRP's interval lies wholly below the mask's
            _row("control.mask", "loc.error", 0.4, hib=False),
            _row("zennit.lrp", "loc.error", 0.2, hib=False),
            # a control above the mask is the other checks' business
            _row("control.mask", "loc.plain", 0.5),
            _row("control.sobel", "loc.plain", 0.9),
            _row("captum.grad_cam", "loc.plain", 0.5),
        ]
    )
    assert ceiling_flags(frame) == [
        "⚠ `loc.error` scores zennit.lrp better than the ground-truth mask "
        "(0.400 [0.390, 0.410]): it rewards more than localisation.",
        "⚠ `loc.spread` scores captum.grad_cam better than the ground-truth mask "
        "(0.500 [0.490, 0.510]): it rewards more than localisation.",
    ]
    assert all(f in explanation_flags(frame) for f in ceiling_flags(frame))


def test_a_better_mean_inside_random_intervals_is_not_a_separation() -> None:
    """Top-k intersection on small images: the mask wins on average by less than the noise."""
    frame = pd.DataFrame(
        [
            _row("control.mask", "loc.topk", 0.0254, ci_low=0.020, ci_high=0.031),
            _row("control.random", "loc.topk", 0.0248, ci_low=0.021, ci_high=0.029),
            _row("control.mask", "loc.clear", 0.0254, ci_low=0.024, ci_high=0.027),
            _row("control.random", "loc.clear", 0.0200, ci_low=0.018, ci_high=0.0235),
            _row("control.mask", "loc.nan", 0.9, ci_low=float("nan"), ci_high=float("nan")),
            _row("control.random", "loc.nan", 0.1, ci_low=float("nan"), ci_high=float("nan")),
        ]
    )
    # no interval (e.g. a single row) is no evidence of separation
    assert separation_flags(frame) == [
        "⚠ `loc.nan` cannot separate the ground-truth mask from random attributions "
        "(mask 0.900 [n/a, n/a] vs random 0.100 [n/a, n/a]: an interval is missing).",
        "⚠ `loc.topk` cannot separate the ground-truth mask from random attributions "
        "(mask 0.025 [0.020, 0.031] vs random 0.025 [0.021, 0.029]: the intervals overlap).",
    ]


def test_only_ok_localisation_cells_and_registered_names_count() -> None:
    frame = pd.DataFrame(
        [
            # not a localisation metric: the mask is no ceiling of faithfulness
            _row("control.mask", "faith.auc", 0.1, kind="faithfulness"),
            _row("control.random", "faith.auc", 0.5, kind="faithfulness"),
            # the random cell failed: nothing to compare
            _row("control.mask", "loc.half", 0.1),
            _row("control.random", "loc.half", float("nan"), status="failed", error="boom"),
            # spec keys relabelled; the registered names come from the provenance
            _row("oracle", "loc.relabelled", 0.2, plugins={"explainer": "control.mask v1 (x 1)"}),
            _row("noise", "loc.relabelled", 0.3, plugins={"explainer": "control.random v1 (x 1)"}),
        ]
    )
    assert separation_flags(frame) == [
        "⚠ `loc.relabelled` cannot separate the ground-truth mask from random attributions "
        "(mask 0.200 [0.190, 0.210] vs random 0.300 [0.290, 0.310]: the mask scores worse than "
        "random)."
    ]
    # a relabelled mask is still a control, exempt from ranking last
    assert control_flags(frame) == []


def _store(path: Path) -> Store:
    store = Store(path / "results.sqlite")
    run = store.start_run({"benchmark": "flags", "spec_file": "f.yaml", "spec_hash": "abc"})
    for r in _frame().to_dict(orient="records"):
        fields = {k: r[k] for k in ("dataset", "model", "explainer", "metric", "kind", "value")}
        row = ResultRow(
            **fields,
            ci_low=r["ci_low"],
            ci_high=r["ci_high"],
            n=r["n"],
            higher_is_better=r["higher_is_better"],
            status="ok",
        )  # type: ignore[arg-type]
        store.write_cell(run, row, [(f"s{i}", 1, float(r["value"])) for i in range(3)])
    return store


def test_markdown_and_html_show_the_same_flag(tmp_path: Path) -> None:
    write_reports(_store(tmp_path), tmp_path)
    md = (tmp_path / "leaderboard.md").read_text()
    page = (tmp_path / "leaderboard.html").read_text()
    assert md.count("cannot separate") == 1 and NOT_SEPARATED in md
    assert "does not rank the controls last" not in md
    assert page.count("cannot separate") == 1
    in_html = html.escape(NOT_SEPARATED).replace("`loc.blind`", "<code>loc.blind</code>")
    assert f"<li>{in_html}</li>" in page


def test_renderers_agree_on_a_frame_without_flags() -> None:
    frame = _frame()
    frame = frame[frame["metric"] == "loc.good"]
    md = render_markdown(frame, pd.DataFrame(), "t", {})
    page = render_html(frame, pd.DataFrame(), "t")
    assert "⚠" not in md and "⚠" not in page and 'class="flags"' not in page


def test_the_mask_is_never_marked_best() -> None:
    frame = _frame()
    frame = frame[frame["metric"] == "loc.good"]
    md = render_markdown(frame, pd.DataFrame(), "t", {})
    assert "| control.mask | 1.000 [" in md and "| captum.grad_cam | **0.600** [" in md
    page = render_html(frame, pd.DataFrame(), "t")
    assert '<td class="best" data-v="0.6">' in page and 'class="best" data-v="1.0"' not in page


def test_a_mask_tying_the_best_method_is_not_marked_best_either() -> None:
    frame = pd.DataFrame(
        [
            _row("captum.grad_cam", "loc.hit", 1.0),
            _row("control.mask", "loc.hit", 1.0),
            _row("control.random", "loc.hit", 0.0),
        ]
    )
    md = render_markdown(frame, pd.DataFrame(), "t", {})
    assert "| control.mask | 1.000 [" in md and "| captum.grad_cam | **1.000** [" in md
    page = render_html(frame, pd.DataFrame(), "t")
    assert page.count('class="best"') == 1  # Grad-CAM only
