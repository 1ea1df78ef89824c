"""Aggregation of scores: bootstrap intervals and paired tests between explainers.

Metrics return per-row scores; everything statistical lives here, never on a
metric instance. Intervals are percentile bootstrap intervals with a seeded
generator, so the same scores always give the same interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from harness.errors import DataError

ALPHA = 0.05
CORRECTION = "holm"


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
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Summary:
    """Mean of ``values`` with a percentile bootstrap interval."""
    x = np.asarray(values, dtype=np.float64)
    n = x.size
    if n == 0:
        return Summary(math.nan, math.nan, math.nan, 0)
    if n == 1 or n_boot <= 0:  # no resampling: no interval, not a zero-width one
        return Summary(float(x.mean()), math.nan, math.nan, n)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    means = x[idx].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Summary(float(x.mean()), float(low), float(high), n)


def bootstrap_statistic(
    n: int,
    statistic: Callable[[np.ndarray], float],
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Summary:
    """Corpus statistic over all ``n`` rows with an interval from resampled row indices.

    Resamples where the statistic is undefined (it raises ``ValueError`` or
    :class:`~harness.errors.DataError`, or returns NaN, e.g. a single class) are dropped.
    """
    value = float(statistic(np.arange(n)))
    if n < 2 or n_boot <= 0:
        return Summary(value, math.nan, math.nan, n)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        try:
            v = float(statistic(rng.integers(0, n, size=n)))
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


def paired_tests(
    scores: Mapping[str, Mapping[str, float]], higher_is_better: bool
) -> list[Comparison]:
    """Wilcoxon signed-rank tests between every pair of explainers, Holm-corrected.

    ``scores`` maps explainer -> {row id -> score}; each pair is tested on the
    rows both have. Zero differences are dropped (Wilcoxon's method); the
    normal approximation SciPy uses with ties gets a continuity correction.
    The better explainer is the side whose signed ranks sum higher, the
    direction the test itself measures (a mean difference can point the other
    way); equal sums name neither. Pairs with fewer than 5 shared rows or
    identical scores get p = 1.
    """
    names = sorted(scores)
    raw: list[tuple[str, str, int, float, float, str]] = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            shared = sorted(set(scores[a]) & set(scores[b]))
            xa = np.array([scores[a][r] for r in shared])
            xb = np.array([scores[b][r] for r in shared])
            diff = xa - xb
            stat, p = math.nan, 1.0
            if len(shared) >= 5 and np.any(diff != 0):
                res = sps.wilcoxon(xa, xb, zero_method="wilcox", correction=True)
                stat, p = float(res.statistic), float(res.pvalue)
            lean = signed_rank_lean(diff)
            better = "" if lean == 0 else a if (lean > 0) == higher_is_better else b
            raw.append((a, b, len(shared), stat, p, better))
    adjusted = holm([r[4] for r in raw]) if raw else []
    return [
        Comparison(a, b, n, s, p, padj, bt)
        for (a, b, n, s, p, bt), padj in zip(raw, adjusted, strict=True)
    ]
