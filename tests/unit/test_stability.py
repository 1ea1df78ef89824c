"""``harness stability``: ranks, Kendall tau, best method and pair verdicts across runs.

The runs are hand-written result folders whose expected values are worked out
by hand in the comments.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest

from harness.errors import StoreError
from harness.reports.stability import load_runs, render_markdown, stability, write_stability

DS, MODEL, PG = "synthetic.lesions", "torchvision.resnet18", "localisation.pointing_game"
GC, LRP, LIME, SG = "captum.grad_cam", "zennit.lrp", "captum.lime", "captum.smoothgrad"
RANDOM, MASK = "control.random", "control.mask"

# pointing game (higher is better) per run; the mask is a ceiling and never ranked
VALUES = {
    "a": {GC: 0.9, LRP: 0.8, LIME: 0.5, RANDOM: 0.1, MASK: 1.0, SG: 0.3},
    "b": {GC: 0.7, LRP: 0.8, LIME: 0.5, RANDOM: 0.1, MASK: 1.0},
    "c": {GC: 0.9, LRP: 0.8, LIME: 0.5, RANDOM: 0.1, MASK: 1.0},
}
# the run's significant pairs: (a, b) -> better
SIGNIFICANT = {
    "a": {(GC, LRP): GC, (GC, RANDOM): GC, (LIME, LRP): LRP},
    "b": {(GC, LRP): LRP, (GC, RANDOM): GC},
    "c": {(GC, RANDOM): GC},
}


def _record(explainer: str, metric: str, value: float | None, **extra: object) -> dict:
    return {
        "dataset": DS, "model": MODEL, "explainer": explainer, "metric": metric,
        "value": value, "higher_is_better": True, "status": "ok",
        "plugins": {"explainer": f"{explainer} v1 (harness-builtins 0.1.0)"}, **extra,
    }  # fmt: skip


def write_run(root: Path, name: str, spec_hash: str | None = None) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    records = [_record(e, PG, v, spec_hash=spec_hash or name) for e, v in VALUES[name].items()]
    records += [
        _record("-", "classification.accuracy", 0.9),  # no explainer: not ranked
        _record(LIME, "complexity.sparseness", None, status="failed"),  # failed: not ranked
    ]
    (folder / "results.json").write_text(json.dumps(records))
    pairs = [
        (a, b) for i, a in enumerate(sorted(VALUES[name])) for b in sorted(VALUES[name])[i + 1 :]
    ]
    rows = []
    for a, b in pairs:
        better = SIGNIFICANT[name].get((a, b)) or SIGNIFICANT[name].get((b, a))
        rows.append({
            "dataset": DS, "model": MODEL, "metric": PG, "explainer_a": a, "explainer_b": b,
            "n": 20, "statistic": 1.0, "p_value": 0.001 if better else 0.5,
            "p_adjusted": 0.004 if better else 0.9, "significant": bool(better),
            "better": better or a, "test": "wilcoxon+holm",
        })  # fmt: skip
    pd.DataFrame(rows).to_csv(folder / "comparisons.csv", index=False)
    return folder


@pytest.fixture
def runs(tmp_path: Path):
    return load_runs([write_run(tmp_path, name) for name in "abc"])


def test_ranks_tau_and_best_worked_by_hand(runs) -> None:
    result = stability(runs)
    (row,) = result.summary.to_dict(orient="records")
    assert row["metric"] == PG and row["methods"] == 3  # grad-cam, lrp, lime; no controls
    # a vs b: (gc, lrp) discordant, (gc, lime) and (lrp, lime) concordant -> tau = 1/3;
    # a vs c identical -> 1; b vs c -> 1/3
    assert row["tau_mean"] == pytest.approx((1 / 3 + 1 + 1 / 3) / 3)
    assert row["tau_min"] == pytest.approx(1 / 3)
    assert row["best"] == f"{GC}; {LRP}; {GC}" and not row["same_best"]
    assert row["missing"] == SG  # scored in run a only
    ranks = result.ranks.set_index("explainer")
    assert MASK not in ranks.index and SG not in ranks.index
    assert ranks.loc[GC, ["rank@a", "rank@b", "rank@c"]].tolist() == [1, 2, 1]
    assert ranks.loc[RANDOM, ["rank@a", "rank@b", "rank@c"]].tolist() == [4, 4, 4]
    assert ranks.loc[GC, "mean_rank"] == pytest.approx(4 / 3)


def test_pair_verdicts_follow_the_runs_tests(runs) -> None:
    pairs = stability(runs).pairs.set_index(["explainer_a", "explainer_b"])["verdict"]
    assert pairs[GC, LRP] == "contradicted"  # significant for grad-cam in a, for lrp in b
    assert pairs[GC, RANDOM] == "reproduced"  # significant for grad-cam in every run
    assert pairs[LIME, LRP] == "stable"  # same order, significant only in a
    assert len(pairs) == 6  # 4 contenders: the mask is never paired
    (row,) = stability(runs).summary.to_dict(orient="records")
    assert (row["contradicted"], row["reproduced"], row["flipped"], row["stable"]) == (1, 1, 0, 4)


def test_flipped_without_tests(tmp_path: Path) -> None:
    a, b = write_run(tmp_path, "a"), write_run(tmp_path, "b")
    for folder in (a, b):
        (folder / "comparisons.csv").unlink()
    pairs = stability(load_runs([a, b])).pairs.set_index(["explainer_a", "explainer_b"])
    assert pairs.loc[(GC, LRP), "verdict"] == "flipped"
    assert pairs.loc[(GC, LRP), ["better@a", "better@b"]].tolist() == [GC, LRP]
    assert pairs.loc[(GC, LRP), "significant@a"] is None  # untested, not "not significant"


def test_markdown_and_files(runs, tmp_path: Path) -> None:
    result = stability(runs)
    text = render_markdown(result, runs)
    assert f"| {GC} | 1, 2, 1 |" in text
    assert f"- contradicted: {PG}: {GC} vs {LRP}: {GC}*, {LRP}*, {GC}" in text
    assert f"{PG}: not scored in every run, left out: {SG}." in text
    paths = write_stability(result, runs, tmp_path / "out")
    assert [p.name for p in paths] == [
        "stability.md", "stability.csv", "stability_ranks.csv", "stability_pairs.csv"
    ]  # fmt: skip
    summary = pd.read_csv(tmp_path / "out" / "stability.csv")
    assert summary.loc[0, "contradicted"] == 1


def test_same_spec_twice_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    a = write_run(tmp_path, "a", spec_hash="h1")
    c = write_run(tmp_path, "c", spec_hash="h1")
    with caplog.at_level(logging.WARNING):
        load_runs([a, c])
    assert "come from the same spec (hash h1)" in caplog.text


@pytest.mark.parametrize(
    ("break_it", "expected"),
    [
        (lambda f: (f / "results.json").unlink(), "no results.json here"),
        (lambda f: (f / "results.json").write_text("[{"), "line 1: not valid JSON"),
        (lambda f: (f / "results.json").write_text('[{"dataset": "d"}]'), "record 0: missing"),
        (lambda f: (f / "results.json").write_text('{"a": 1}'), "expected a list"),
        (lambda f: (f / "comparisons.csv").write_text(""), "not a readable CSV file"),
        (
            lambda f: (f / "comparisons.csv").write_text("dataset,model\nd,m\n"),
            "missing column(s) metric",
        ),
    ],
)
def test_bad_run_folder_is_named(tmp_path: Path, break_it, expected: str) -> None:
    a, b = write_run(tmp_path, "a"), write_run(tmp_path, "b")
    break_it(b)
    with pytest.raises(StoreError, match="b") as err:
        load_runs([a, b])
    assert expected in str(err.value) and str(b) in str(err.value)


def test_needs_two_distinct_runs_sharing_a_metric(tmp_path: Path) -> None:
    a = write_run(tmp_path, "a")
    with pytest.raises(StoreError, match="at least two runs"):
        load_runs([a])
    with pytest.raises(StoreError, match="given twice"):
        load_runs([a, a])
    other = write_run(tmp_path / "x", "b")
    records = json.loads((other / "results.json").read_text())
    for r in records:
        r["metric"] = "localisation.relevance_mass"
    (other / "results.json").write_text(json.dumps(records))
    with pytest.raises(StoreError, match="share no explanation metric"):
        stability(load_runs([a, other]))
    assert [r.label for r in load_runs([a, other / "results.json"])] == ["a", "b"]
    (other / "results.json").write_text("[]")  # a run that scored nothing
    with pytest.raises(StoreError, match="share no explanation metric"):
        stability(load_runs([a, other]))


def test_output_under_a_file_is_refused(runs, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="stability folder"):
        write_stability(stability(runs), runs, blocker / "out")
