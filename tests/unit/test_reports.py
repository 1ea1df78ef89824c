from __future__ import annotations

import html
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from harness.reports import write_reports
from harness.reports.comparisons import summary
from harness.reports.html import heatmap_png
from harness.runner import store_comparisons
from harness.store import ResultRow, Store

EVIL = "<script>alert('x')</script>"


def filled_store(path: Path) -> Store:
    store = Store(path / "results.sqlite")
    run = store.start_run({"benchmark": "demo", "spec_file": "demo.yaml", "spec_hash": "abc"})
    rng = np.random.default_rng(0)
    common = dict(dataset="d", model="m", kind="localisation", higher_is_better=True)
    for explainer, centre in (
        ("captum.grad_cam", 0.8),
        ("control.random", 0.2),
        ("control.sobel", 0.9),
    ):
        values = np.clip(rng.normal(centre, 0.05, 20), 0, 1)
        row = ResultRow(
            explainer=explainer,
            metric="loc.mass",
            status="ok",
            value=float(values.mean()),
            ci_low=float(values.mean()) - 0.02,
            ci_high=float(values.mean()) + 0.02,
            n=20,
            **common,
        )  # type: ignore[arg-type]
        store.write_cell(run, row, [(f"s{i}", 1, float(v)) for i, v in enumerate(values)])
    store.write_cell(
        run,
        ResultRow(
            explainer="captum.grad_cam",
            metric="sanity.x",
            status="skipped",
            reason="metric needs randomisable: model cannot be randomised",
            **common,
        ),
    )  # type: ignore[arg-type]
    store.write_cell(
        run, ResultRow(explainer="evil", metric="loc.mass", status="failed", error=EVIL, **common)
    )  # type: ignore[arg-type]
    store.write_cell(
        run,
        ResultRow(
            dataset="d",
            model="m",
            explainer="-",
            metric="cls.acc",
            status="ok",
            value=0.9,
            ci_low=0.8,
            ci_high=0.95,
            n=50,
            kind="classification",
            higher_is_better=True,
        ),
    )
    store_comparisons(store, run)
    return store


def test_markdown_tables_flags_and_reasons(tmp_path: Path) -> None:
    store = filled_store(tmp_path)
    write_reports(store, tmp_path)
    md = (tmp_path / "leaderboard.md").read_text()
    assert "| explainer | loc.mass ↑ | sanity.x ↑ |" in md
    assert "| cls.acc | ↑ | 0.900 | [0.800, 0.950] | 50 |" in md
    # the sobel control beats Grad-CAM: the metric is flagged
    assert "⚠ `loc.mass` does not rank the controls last: control.sobel" in md
    assert "skipped: metric needs randomisable" in md
    wins = "- `loc.mass`:\n  - control.sobel > captum.grad_cam, control.random\n"
    assert wins + "  - captum.grad_cam > control.random\n" in md  # most wins first
    records = json.loads((tmp_path / "results.json").read_text())
    assert {r["status"] for r in records} == {"ok", "skipped", "failed"}


def listed_wins(text: str) -> set[tuple[str, str]]:
    """(better, worse) pairs of a report's lines ``better > worse, worse, ...``."""
    pairs = set()
    for line in text.splitlines():
        better, sep, worse = line.strip(" -").partition(" > ")
        if sep and better.startswith(("captum.", "control.", "zennit.")):
            pairs |= {(better, w) for w in worse.split(", ")}
    return pairs


def test_every_report_carries_the_paired_tests_and_the_run_agreement(tmp_path: Path) -> None:
    store = filled_store(tmp_path)
    run = store.latest_run()["run_id"]
    agreeing = ResultRow(
        dataset="d", model="m", explainer="captum.grad_cam", metric="faith.corr",
        kind="faithfulness", higher_is_better=True, status="ok", value=0.3, ci_low=0.2,
        ci_high=0.4, n=20, notes={"run_agreement": 0.4213},
    )  # fmt: skip
    store.write_cell(run, agreeing, [(f"s{i}", 1, 0.3) for i in range(20)])
    write_reports(store, tmp_path)
    stored = pd.DataFrame(store.query("SELECT * FROM comparisons WHERE run_id = ?", (run,)))
    table = pd.read_csv(tmp_path / "comparisons.csv")
    assert len(table) == len(stored) == 3  # every pair of the three loc.mass explainers
    assert (table["significant"] == (stored["p_adjusted"] < 0.05)).all()
    assert set(table["test"]) == {"wilcoxon+holm"}
    page = (tmp_path / "leaderboard.html").read_text()
    md = (tmp_path / "leaderboard.md").read_text()
    significant = table[table["significant"]]
    assert len(significant) >= 1
    expected = {
        (c.better, c.explainer_b if c.better == c.explainer_a else c.explainer_a)
        for c in significant.itertuples()
    }
    assert listed_wins(md) == expected
    assert listed_wins(html.unescape(re.sub(r"<[^>]+>", "\n", page))) == expected
    sentence = f"{len(significant)} of 3 differences significant at p &lt; 0.05"
    assert sentence in page and sentence.replace("&lt;", "<") in md
    assert "ρ=0.42" in page and "ρ=0.42" in md
    row = pd.read_csv(tmp_path / "leaderboard.csv").query("metric == 'faith.corr'").iloc[0]
    assert json.loads(row["notes"]) == {"run_agreement": 0.4213}  # JSON, not a Python repr


def test_html_escapes_every_string_from_the_store(tmp_path: Path) -> None:
    store = filled_store(tmp_path)
    write_reports(store, tmp_path)
    page = (tmp_path / "leaderboard.html").read_text()
    assert EVIL not in page and "&lt;script&gt;" in page
    assert "http" not in page.replace(
        "http-equiv", ""
    )  # self-contained: nothing loads from the network


def test_heatmap_png_is_a_png_of_the_image_size() -> None:
    import base64
    import io

    from PIL import Image

    img, overlay = heatmap_png(np.random.rand(16, 16), np.random.rand(16, 16))
    for url in (img, overlay):
        data = base64.b64decode(url.split(",", 1)[1])
        assert Image.open(io.BytesIO(data)).size == (16, 16)


def test_token_heat_maps_render_escaped_words_shaded_by_score(tmp_path: Path) -> None:
    from harness.reports.html import token_heatmap

    store = filled_store(tmp_path)
    run = store.latest_run()["run_id"]
    overlay = token_heatmap(["tumour", EVIL, "patient"], [2.0, -1.0, 0.0])
    store.write_gallery(run, ("d", "m", "captum.grad_cam"), [("s9", 1, "", overlay)])
    store.write_gallery(run, ("d", "m", "control.random"), [("s8", 1, "", "javascript:alert(1)")])
    write_reports(store, tmp_path)
    page = (tmp_path / "leaderboard.html").read_text()
    assert '<p class="tokens">' in page
    assert 'style="background:rgba(220,50,40,1.000)" title="+1.000">tumour</span>' in page
    assert 'rgba(40,90,220,0.500)" title="-0.500">&lt;script&gt;' in page  # negative: blue
    assert EVIL not in page and "javascript:" not in page  # unknown overlays are not shown


def test_summary_groups_wins_by_winner_most_wins_first() -> None:
    def pair(a: str, b: str, better: str, p: float) -> dict[str, object]:
        return {
            "metric": "m",
            "explainer_a": a,
            "explainer_b": b,
            "better": better,
            "p_adjusted": p,
        }

    comps = pd.DataFrame(
        [
            pair("b", "z", "z", 0.01),  # z beats b
            pair("a", "z", "z", 0.2),  # not significant: listed nowhere
            pair("a", "b", "a", 0.001),
            pair("c", "a", "a", 0.04),
            pair("b", "c", "c", 0.03),
        ]
    )
    intro, listed = summary(comps)
    assert "3 of 5" not in intro and "4 of 5 differences significant" in intro
    assert listed == [("m", ["a > b, c", "c > b", "z > b"])]
