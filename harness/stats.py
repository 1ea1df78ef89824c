"""Aggregation of scores: bootstrap intervals and paired tests between explainers.

Metrics return per-row scores; everything statistical lives here, never on a
metric instance. Intervals are percentile bootstrap intervals with a seeded
generator, so the same scores always give the same interval.

The unit of resampling and of the paired tests is the *sample*: a multi-label
image explained for each of its positive findings has several rows, which are
not independent (one image, one model pass, often similar maps). Given each
row's sample, intervals resample samples with all their rows (a cluster
bootstrap) and paired tests compare per-sample mean differences; with one row
per sample both are the ordinary row-level procedures.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from scipy import stats as sps

from harness.errors import DataError

ALPHA = 0.05
CORRECTION = "holm"
K = TypeVar("K", bound=Hashable)


def _clusters(groups: Sequence[Hashable] | None, n: int) -> list[np.ndarray] | None:
    """Row indices of each group in first-seen order; None when every row is its own group."""
    if groups is None:
        return None
    if len(groups) != n:
        raise DataError(
            f"bootstrap: {len(groups)} group labels for {n} rows - expected one per row"
        )
    members: dict[Hashable, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    if len(members) == n:
        return None
    return [np.asarray(rows, dtype=np.int64) for rows in members.values()]


@dataclass(frozen=True)
class Summary:
    """Mean (or corpus value) of a score with its bootstrap interval."""

    value: float
    ci_low: float
    ci_high: float
    n: int


def bootstrap_mean(
    values: Sequence[float] | np.ndarray,
    *,
    groups: Sequence[Hashable] | None = None,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Summary:
    """Mean of ``values`` with a percentile bootstrap interval.

    ``groups`` names each row's sample: samples are resampled with all their
    rows and each resample's mean is over its rows (None: rows are samples).
    """
    x = np.asarray(values, dtype=np.float64)
    n = x.size
    if n == 0:
        return Summary(math.nan, math.nan, math.nan, 0)
    clusters = _clusters(groups, n)
    units = n if clusters is None else len(clusters)
    if units == 1 or n_boot <= 0:  # no resampling: no interval, not a zero-width one
        return Summary(float(x.mean()), math.nan, math.nan, n)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, units, size=(n_boot, units))
    if clusters is None:
        means = x[idx].mean(axis=1)
    else:
        sums = np.array([x[rows].sum() for rows in clusters])
        sizes = np.array([len(rows) for rows in clusters], dtype=np.float64)
        means = sums[idx].sum(axis=1) / sizes[idx].sum(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Summary(float(x.mean()), float(low), float(high), n)


def bootstrap_statistic(
    n: int,
    statistic: Callable[[np.ndarray], float],
    *,
    groups: Sequence[Hashable] | None = None,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Summary:
    """Corpus statistic over all ``n`` rows with an interval from resampled row indices.

    ``groups`` names each row's sample: a resample draws samples and passes
    all their rows (None: rows are samples). Resamples where the statistic is
    undefined (it raises ``ValueError`` or :class:`~harness.errors.DataError`,
    or returns NaN, e.g. a single class) are dropped.
    """
    value = float(statistic(np.arange(n)))
    clusters = _clusters(groups, n)
    units = n if clusters is None else len(clusters)
    if units < 2 or n_boot <= 0:
        return Summary(value, math.nan, math.nan, n)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        idx = rng.integers(0, units, size=units)
        if clusters is not None:
            idx = np.concatenate([clusters[i] for i in idx])
        try:
            v = float(statistic(idx))
        except (ValueError, DataError):
            continue
        if math.isfinite(v):
            draws.append(v)
    if not draws:
        return Summary(value, math.nan, math.nan, n)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(np.asarray(draws), [tail, 100 - tail])
    return Summary(value, float(low), float(high), n)


@dataclass(frozen=True)
class Comparison:
    """A paired test between two explainers on the rows both scored."""

    a: str
    b: str
    n: int
    statistic: float
    p_value: float
    p_adjusted: float
    better: str

    @property
    def significant(self) -> bool:
        """True when the Holm-adjusted p-value is below ``ALPHA``."""
        return self.p_adjusted < ALPHA


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order."""
    m = len(p_values)
    order = np.argsort(p_values, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted.tolist()


def signed_rank_lean(diff: np.ndarray) -> float:
    """Return ``W+ - W-``: ranks of the nonzero ``|diff|`` (ties averaged), summed with their signs."""
    nonzero = diff[diff != 0]
    if nonzero.size == 0:
        return 0.0
    ranks = sps.rankdata(np.abs(nonzero))
    return float(ranks[nonzero > 0].sum() - ranks[nonzero < 0].sum())


def _paired_differences(
    a: Mapping[K, float], b: Mapping[K, float], sample: Callable[[K], Hashable] | None
) -> np.ndarray:
    """Return ``a - b`` on the rows both have, averaged per sample if ``sample`` maps rows to one.

    Rows where either score is not finite are left out, as rows only one side has.
    """
    shared = [r for r in a if r in b and math.isfinite(a[r]) and math.isfinite(b[r])]
    if sample is None:
        return np.array([a[r] - b[r] for r in shared], dtype=np.float64)
    per_sample: dict[Hashable, list[float]] = {}
    for r in shared:
        per_sample.setdefault(sample(r), []).append(a[r] - b[r])
    return np.array([math.fsum(d) / len(d) for d in per_sample.values()], dtype=np.float64)


def paired_tests(
    scores: Mapping[str, Mapping[K, float]],
    higher_is_better: bool,
    *,
    sample: Callable[[K], Hashable] | None = None,
) -> list[Comparison]:
    """Wilcoxon signed-rank tests between every pair of explainers, Holm-corrected.

    ``scores`` maps explainer -> {row key -> score}; each pair is tested on the
    rows both have with finite scores. ``sample`` maps a row key to its sample: the test then runs
    on each sample's mean difference over its shared rows (rows of one sample
    are not independent), and ``n`` counts samples; None treats rows as
    samples. Zero differences are dropped (Wilcoxon's method); the normal
    approximation SciPy uses with ties gets a continuity correction. The
    better explainer is the side whose signed ranks sum higher, the direction
    the test itself measures (a mean difference can point the other way);
    equal sums name neither. Pairs with fewer than 5 shared samples or
    identical scores get p = 1.
    """
    names = sorted(scores)
    raw: list[tuple[str, str, int, float, float, str]] = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            diff = _paired_differences(scores[a], scores[b], sample)
            stat, p = math.nan, 1.0
            if len(diff) >= 5 and np.any(diff != 0):
                res = sps.wilcoxon(diff, zero_method="wilcox", correction=True)
                stat, p = float(res.statistic), float(res.pvalue)
            lean = signed_rank_lean(diff)
            better = "" if lean == 0 else a if (lean > 0) == higher_is_better else b
            raw.append((a, b, len(diff), stat, p, better))
    adjusted = holm([r[4] for r in raw]) if raw else []
    return [
        Comparison(a, b, n, s, p, padj, bt)
        for (a, b, n, s, p, bt), padj in zip(raw, adjusted, strict=True)
    ]
