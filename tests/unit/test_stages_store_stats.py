from __future__ import annotations

import json
import math
from operator import itemgetter
from pathlib import Path

import numpy as np
import pytest
import torch
from _core_plugins import Gradient
from scipy import stats as sps

from harness import stats as stats_module
from harness.errors import DataError
from harness.stages import ArtefactCache, stage_key
from harness.stats import bootstrap_mean, bootstrap_statistic, holm, paired_tests
from harness.store import ResultRow, Store


def test_stage_key_depends_on_every_input() -> None:
    base = stage_key("attributions", Gradient(), ["m1"], 0)
    assert base == stage_key("attributions", Gradient(), ["m1"], 0)
    assert base != stage_key("attributions", Gradient(absolute=False), ["m1"], 0)
    assert base != stage_key("attributions", Gradient(), ["m2"], 0)
    assert base != stage_key("attributions", Gradient(), ["m1"], 1)
    assert base != stage_key("scores", Gradient(), ["m1"], 0)

    class Bumped(Gradient):
        version = "2"

    assert base != stage_key("attributions", Bumped(), ["m1"], 0)


def test_the_checkpoint_key_names_a_gpu_but_keeps_cpu_keys() -> None:
    from harness.pipeline.training import model_stage_key

    model = Gradient()  # any component: the key hashes its name, version and parameters
    cpu = model_stage_key(model, "splits", 0, torch.device("cpu"))
    assert cpu == stage_key("model", model, ["splits"], 0)  # cached CPU checkpoints stay valid
    assert model_stage_key(model, "splits", 0, torch.device("cuda")) != cpu


def test_cache_round_trip_and_sidecar_marks_completion(tmp_path: Path) -> None:
    cache = ArtefactCache(tmp_path)
    assert not cache.has("abcd")
    cache.save("abcd", tensors={"x": torch.arange(4.0)}, data={"ids": ["a"]}, meta={"seconds": 1.5})
    assert cache.has("abcd")
    assert torch.equal(cache.load_tensors("abcd")["x"], torch.arange(4.0))
    assert cache.load_data("abcd") == {"ids": ["a"]}
    assert cache.meta("abcd")["seconds"] == 1.5
    # an interrupted write leaves a tensor file but no sidecar: not complete
    (tmp_path / "ab" / "abcd.json").unlink()
    assert not cache.has("abcd")
    cache.drop("abcd")
    assert not list((tmp_path / "ab").glob("abcd*"))


def test_store_writes_cells_transactionally(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.sqlite")
    run = store.start_run({"benchmark": "b", "spec_hash": "h"})
    row = ResultRow(
        "d",
        "m",
        "e",
        "x",
        "ok",
        value=0.5,
        n=2,
        plugins={"model": "m v1"},
        notes={"run_agreement": 0.9},
    )
    store.write_cell(run, row, [("s1", 1, 0.25), ("s2", 0, 0.75)], {"curve": [1, 2]})
    store.write_cell(run, row, [("s1", 1, 0.25)])  # rewriting a cell replaces its samples
    got = store.query("SELECT * FROM results")
    assert (
        len(got) == 1
        and got[0]["value"] == 0.5
        and json.loads(got[0]["notes"]) == {"run_agreement": 0.9}
    )
    assert len(store.query("SELECT * FROM sample_scores")) == 1
    assert store.latest_run()["run_id"] == run
    store.close()


def test_bootstrap_mean_is_seeded_and_covers_the_mean() -> None:
    x = np.random.default_rng(0).normal(1.0, 1.0, size=200)
    a = bootstrap_mean(x, seed=3)
    assert a == bootstrap_mean(x, seed=3)
    assert a.ci_low < a.value < a.ci_high
    # the percentile interval of the mean is about mean +- 1.96 * sd / sqrt(n)
    half = 1.96 * x.std(ddof=1) / np.sqrt(x.size)
    assert a.ci_high - a.ci_low == pytest.approx(2 * half, rel=0.15)
    one = bootstrap_mean([2.0])  # nothing to resample: no interval rather than a zero-width one
    assert one.value == 2.0 and np.isnan(one.ci_low) and np.isnan(one.ci_high)
    assert np.isnan(bootstrap_statistic(1, lambda idx: 0.5).ci_low)


def test_bootstrap_statistic_drops_undefined_resamples() -> None:
    labels = np.array([0, 1, 0, 1])

    for error in (ValueError, DataError):

        def stat(idx: np.ndarray, error: type[Exception] = error) -> float:
            if len(set(labels[idx])) < 2:
                raise error("one class")
            return float(labels[idx].mean())

        s = bootstrap_statistic(4, stat, n_boot=200)
        assert s.value == 0.5 and s.ci_low < 0.5 < s.ci_high


def test_bootstrap_resamples_samples_with_all_their_rows() -> None:
    """Rows of one sample move together: k copies of each row give the per-sample interval."""
    x = np.random.default_rng(2).normal(0.0, 1.0, size=40)
    per_sample = bootstrap_mean(x, seed=5)
    ids = [f"s{i}" for i in range(40)]
    assert bootstrap_mean(x, groups=ids, seed=5) == per_sample  # one row each: unchanged
    tripled = bootstrap_mean(np.repeat(x, 3), groups=np.repeat(ids, 3).tolist(), seed=5)
    assert (tripled.value, tripled.ci_low, tripled.ci_high) == pytest.approx(
        (per_sample.value, per_sample.ci_low, per_sample.ci_high), abs=1e-12
    )
    assert tripled.n == 120
    naive = bootstrap_mean(np.repeat(x, 3), seed=5)  # rows as samples: about 1/sqrt(3) as wide
    assert naive.ci_high - naive.ci_low < 0.7 * (tripled.ci_high - tripled.ci_low)
    # unequal rows per sample: every resample's mean is over the rows it drew
    uneven = bootstrap_mean([0.0, 0.0, 0.0, 1.0], groups=["a", "a", "a", "b"], n_boot=400)
    assert uneven.value == 0.25 and uneven.ci_low == 0.0 and uneven.ci_high == 1.0
    assert np.isnan(bootstrap_mean([1.0, 2.0], groups=["a", "a"]).ci_low)  # one sample
    with pytest.raises(DataError, match="3 group labels for 2 rows"):
        bootstrap_mean([1.0, 2.0], groups=["a", "b", "c"])


def test_bootstrap_statistic_passes_whole_samples() -> None:
    groups = ["a", "a", "b", "c", "c", "c"]
    seen: list[np.ndarray] = []

    def stat(idx: np.ndarray) -> float:
        seen.append(idx)
        return float(len(idx))

    bootstrap_statistic(6, stat, groups=groups, n_boot=50)
    members = {"a": [0, 1], "b": [2], "c": [3, 4, 5]}
    for idx in seen[1:]:
        rows = idx.tolist()
        while rows:  # the resample is a sequence of whole samples, rows in order
            sample = next(g for g, m in members.items() if rows[: len(m)] == m)
            rows = rows[len(members[sample]) :]
    assert len({len(idx) for idx in seen[1:]}) > 1  # samples of different sizes were drawn


def test_paired_tests_average_the_rows_of_a_sample() -> None:
    rng = np.random.default_rng(4)
    a = {(f"s{i}", 0): float(v) for i, v in enumerate(rng.uniform(0.4, 1.0, 12))}
    b = {(f"s{i}", 0): float(v) for i, v in enumerate(rng.uniform(0.0, 0.6, 12))}
    (single,) = paired_tests({"A": a, "B": b}, True, sample=itemgetter(0))
    # each sample explained for three targets with the same scores: three times the rows,
    # the same evidence
    a3 = {(s, t): v for (s, _), v in a.items() for t in range(3)}
    b3 = {(s, t): v for (s, _), v in b.items() for t in range(3)}
    (clustered,) = paired_tests({"A": a3, "B": b3}, True, sample=itemgetter(0))
    assert (clustered.n, clustered.p_value) == (single.n, single.p_value) == (12, single.p_value)
    (as_rows,) = paired_tests({"A": a3, "B": b3}, True)
    assert as_rows.n == 36 and as_rows.p_value < clustered.p_value / 10
    # a sample's differences are averaged over the rows both explainers have
    a2 = {("x", 0): 1.0, ("x", 1): 0.0, ("y", 0): 3.0}
    b2 = {("x", 0): 0.0, ("x", 1): 2.0, ("y", 0): 3.0, ("y", 1): 9.0}
    diff = stats_module._paired_differences(a2, b2, itemgetter(0))
    assert diff.tolist() == [-0.5, 0.0]


def test_holm_matches_hand_computation() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def test_paired_tests_use_shared_rows_and_direction() -> None:
    rng = np.random.default_rng(1)
    good = {f"r{i}": float(v) for i, v in enumerate(rng.uniform(0.6, 1.0, 30))}
    bad = {f"r{i}": float(v) for i, v in enumerate(rng.uniform(0.0, 0.4, 30))}
    bad["only_here"] = 9.0
    (c,) = paired_tests({"cam": good, "random": bad}, higher_is_better=True)
    expected = sps.wilcoxon([good[k] for k in sorted(good)], [bad[k] for k in sorted(good)]).pvalue
    assert c.n == 30 and c.better == "cam" and c.significant
    assert c.p_value == pytest.approx(expected)
    (c,) = paired_tests({"cam": good, "random": bad}, higher_is_better=False)
    assert c.better == "random"
    # a row either side could not score (NaN, inf) is left out like a row only one side has
    (c,) = paired_tests({"cam": {**good, "r0": math.nan}, "random": {**bad, "r1": math.inf}}, True)
    kept = sorted(set(good) - {"r0", "r1"})
    expected = sps.wilcoxon([good[k] for k in kept], [bad[k] for k in kept]).pvalue
    assert c.n == 28 and c.better == "cam" and c.p_value == pytest.approx(expected)


def test_paired_direction_is_the_signed_rank_direction_not_the_mean() -> None:
    """20 rows favour A by 1, one favours B by 30: the test (and the winner) is A's."""
    rows = [f"r{i}" for i in range(21)]
    a = dict.fromkeys(rows, 1.0)
    b = {r: 0.0 for r in rows[:20]} | {rows[20]: 31.0}
    assert np.mean([a[r] - b[r] for r in rows]) < 0  # the mean says B
    (c,) = paired_tests({"A": a, "B": b}, higher_is_better=True)
    assert c.significant and c.better == "A"
    (c,) = paired_tests({"A": a, "B": b}, higher_is_better=False)
    assert c.better == "B"
    balanced = {f"s{i}": d for i, d in enumerate([1.0, -1.0, 2.0, -2.0, 3.0, -3.0])}
    (c,) = paired_tests({"A": balanced, "B": dict.fromkeys(balanced, 0.0)}, True)
    assert c.better == "" and not c.significant


def test_a_metric_value_that_is_not_finite_fails_its_cell() -> None:
    from harness.errors import ContractViolation
    from harness.pipeline.context import ok_row
    from harness.planner import Cell

    cell = Cell(dataset="d", model="m", explainer="-", metric="classification.accuracy")
    nan = float("nan")
    summary = {"value": nan, "ci_low": nan, "ci_high": nan, "n": 5}
    with pytest.raises(ContractViolation, match="on all 5 rows - expected a finite number"):
        ok_row(None, cell, summary, seconds=0.0, stage_key="k")  # type: ignore[arg-type]


def test_explanation_metrics_draw_the_same_numbers_for_every_explainer(tmp_path) -> None:
    """The draws seed names the model and the explain set, not the explainer (common random numbers)."""
    from types import SimpleNamespace

    from harness.pipeline.context import cached
    from harness.pipeline.explaining import draws_seed
    from harness.stages import ArtefactCache

    ctx = SimpleNamespace(spec=SimpleNamespace(seed=0), force=False, forced=set())
    ctx.cache = ArtefactCache(tmp_path)
    trained, eset = SimpleNamespace(model_key="m1"), SimpleNamespace(key="e1")
    seed = draws_seed(ctx, trained, eset)  # type: ignore[arg-type]
    assert seed != draws_seed(ctx, SimpleNamespace(model_key="m2"), eset)  # type: ignore[arg-type]

    def draw() -> tuple[dict[str, torch.Tensor], None]:
        return {"x": torch.rand(3)}, None

    one, _, _ = cached(ctx, "score-of-explainer-a", "a", draw, seed=seed)  # type: ignore[arg-type]
    two, _, _ = cached(ctx, "score-of-explainer-b", "b", draw, seed=seed)  # type: ignore[arg-type]
    assert torch.equal(one["x"], two["x"])
