"""Is a variant really better than the base? Differences over seeds, with a test and a power
estimate, for the markdown report and the HTML report.

For each metric, each variant is compared with the base (the first variant of the spec):

- the mean difference ``variant - base`` with a percentile bootstrap 95% CI (seeded, 10,000
  resamples: of the per-seed differences when paired, of each group apart otherwise);
- a p-value: the **paired t-test** over the seeds both share (same seed: same data order and
  same G initialisation, so the pair removes that noise), else **Welch's t-test**;
- ✓ when p < 0.05 with at least 3 seeds; "not significant" when p >= 0.05 although the run
  has the seeds the power estimate asks for; else "needs more seeds";
- how many seeds would detect the observed difference with 80% power (two-sided α = 0.05),
  from the noncentral t distribution (paired: the sd of the differences; Welch: per group, the
  pooled sd), and never fewer than the 3 the ✓ needs (so the two columns cannot disagree).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats as st

ALPHA = 0.05
POWER = 0.80
MIN_SEEDS = 3
RESAMPLES = 10_000
MAX_SEEDS_SEARCHED = 10_000
SIGNIFICANT = "✓"
NEEDS_MORE = "needs more seeds"
NOT_SIGNIFICANT = "not significant"

Test = Literal["paired t", "Welch t", "none"]


@dataclass(frozen=True)
class Comparison:
    """One metric, one variant against the base; ``diff`` is ``variant - base``."""

    metric: str
    variant: str
    base: str
    test: Test
    n: int  # pairs (paired) or the smaller group (Welch)
    diff: float
    ci_low: float
    ci_high: float
    p_value: float | None  # None: the test is undefined (fewer than 2 seeds, zero spread)
    seeds_needed: int | None  # None: no difference to detect, or no spread to size it with

    @property
    def significant(self) -> bool:
        """p < 0.05 with at least :data:`MIN_SEEDS` seeds."""
        return self.p_value is not None and self.p_value < ALPHA and self.n >= MIN_SEEDS

    @property
    def verdict(self) -> str:
        """'✓', 'not significant' (enough seeds by :attr:`seeds_needed`) or 'needs more
        seeds'."""
        if self.significant:
            return SIGNIFICANT
        enough = self.seeds_needed is not None and self.n >= self.seeds_needed
        return NOT_SIGNIFICANT if enough and self.p_value is not None else NEEDS_MORE


def _finite(values: dict[int, float]) -> dict[int, float]:
    return {s: float(v) for s, v in values.items() if v is not None and math.isfinite(v)}


def bootstrap_ci(
    a: np.ndarray, b: np.ndarray | None, *, seed: int = 0, resamples: int = RESAMPLES
) -> tuple[float, float]:
    """95% percentile CI of ``mean(a)`` (``b`` None: ``a`` holds paired differences) or of
    ``mean(a) - mean(b)`` (independent groups), from a seeded bootstrap."""
    rng = np.random.default_rng(seed)
    means = a[rng.integers(0, len(a), (resamples, len(a)))].mean(axis=1)
    if b is not None:
        means = means - b[rng.integers(0, len(b), (resamples, len(b)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def power_paired(d: float, n: int, alpha: float = ALPHA) -> float:
    """Power of a two-sided one-sample (paired) t-test with ``n`` pairs at effect size ``d``
    (mean difference / sd of the differences)."""
    df = n - 1
    crit = st.t.ppf(1 - alpha / 2, df)
    nc = d * math.sqrt(n)
    return float(st.nct.sf(crit, df, nc) + st.nct.cdf(-crit, df, nc))


def power_welch(d: float, n: int, alpha: float = ALPHA) -> float:
    """Power of a two-sided two-sample t-test with ``n`` per group at effect size ``d``
    (difference / pooled sd); df = 2n - 2."""
    df = 2 * n - 2
    crit = st.t.ppf(1 - alpha / 2, df)
    nc = d * math.sqrt(n / 2)
    return float(st.nct.sf(crit, df, nc) + st.nct.cdf(-crit, df, nc))


def seeds_needed(d: float, paired: bool, power: float = POWER) -> int | None:
    """Smallest number of seeds (pairs, or per group), at least :data:`MIN_SEEDS`, reaching
    ``power`` at effect size ``d``; None when ``d`` is 0 or not finite, or more than
    :data:`MAX_SEEDS_SEARCHED` are needed."""
    if not math.isfinite(d) or d == 0:
        return None
    fn = power_paired if paired else power_welch
    lo, hi = MIN_SEEDS, MIN_SEEDS
    while fn(abs(d), hi) < power:  # power grows with n: double, then bisect
        lo, hi = hi, hi * 2
        if hi > MAX_SEEDS_SEARCHED:
            return None
    while lo < hi:
        mid = (lo + hi) // 2
        if fn(abs(d), mid) >= power:
            hi = mid
        else:
            lo = mid + 1
    return hi


def compare(
    metric: str,
    base: str,
    variant: str,
    base_values: dict[int, float],
    variant_values: dict[int, float],
    *,
    seed: int = 0,
) -> Comparison:
    """Compare ``variant`` with ``base`` on one metric from per-seed values (``seed -> value``,
    non-finite ones dropped). Paired over the shared seeds when at least 2 are shared."""
    a, b = _finite(variant_values), _finite(base_values)
    shared = sorted(set(a) & set(b))
    nan = math.nan
    if len(shared) >= 2:
        diffs = np.array([a[s] - b[s] for s in shared])
        diff = float(diffs.mean())
        low, high = bootstrap_ci(diffs, None, seed=seed)
        sd = float(diffs.std(ddof=1))
        pa, pb = [a[s] for s in shared], [b[s] for s in shared]
        p = None if sd == 0 else float(st.ttest_rel(pa, pb).pvalue)
        needed = seeds_needed(diff / sd, paired=True) if sd > 0 else None
        n = len(shared)
        return Comparison(metric, variant, base, "paired t", n, diff, low, high, p, needed)
    if not a or not b:
        return Comparison(metric, variant, base, "none", 0, nan, nan, nan, None, None)
    va, vb = np.array(list(a.values())), np.array(list(b.values()))
    diff = float(va.mean() - vb.mean())
    n = min(len(va), len(vb))
    if n < 2:  # one seed on a side: a difference, no test
        return Comparison(metric, variant, base, "none", n, diff, nan, nan, None, None)
    low, high = bootstrap_ci(va, vb, seed=seed)
    pooled = math.sqrt((va.var(ddof=1) + vb.var(ddof=1)) / 2)
    p = None if pooled == 0 else float(st.ttest_ind(va, vb, equal_var=False).pvalue)
    needed = seeds_needed(diff / pooled, paired=False) if pooled > 0 else None
    return Comparison(metric, variant, base, "Welch t", n, diff, low, high, p, needed)


def compare_variants(
    rows: list[dict[str, object]], variants: list[str], metrics: list[str]
) -> list[Comparison]:
    """Every variant after the first against the first, for each of ``metrics``; ``rows`` are
    results.csv rows (``variant``, ``seed`` and the metric keys)."""
    if len(variants) < 2:
        return []
    values: dict[str, dict[str, dict[int, float]]] = {m: {v: {} for v in variants} for m in metrics}
    for row in rows:
        for m in metrics:
            value = row.get(m)
            if row["variant"] in variants and isinstance(value, (int, float)):
                values[m][str(row["variant"])][int(row["seed"])] = float(value)  # type: ignore[arg-type]
    base = variants[0]
    return [
        compare(m, base, v, values[m][base], values[m][v])
        for m in metrics
        for v in variants[1:]
        if values[m][base] or values[m][v]
    ]


def _num(x: float | None, decimals: int) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x:+.{decimals}f}"


COMPARISON_HEADER = ["metric", "variant", "Δ", "95% CI", "test", "seeds", "p", "", "seeds for 80%"]


def comparison_cells(c: Comparison, decimals: int) -> list[str]:
    """One comparison as the cells under :data:`COMPARISON_HEADER`."""
    ci = (
        "–"
        if not math.isfinite(c.ci_low)
        else f"[{_num(c.ci_low, decimals)}, {_num(c.ci_high, decimals)}]"
    )
    return [
        c.metric,
        c.variant,
        _num(c.diff, decimals),
        ci,
        c.test,
        str(c.n),
        "–" if c.p_value is None else f"{c.p_value:.3g}",
        c.verdict,
        "–" if c.seeds_needed is None else str(c.seeds_needed),
    ]


def markdown_section(comparisons: list[Comparison], decimals: dict[str, int]) -> str:
    """The "Is it significant?" section of results.md (empty with a single variant)."""
    if not comparisons:
        return ""
    lines = [
        "## Against the base variant",
        "",
        f"Δ is variant − {comparisons[0].base} (the base, the first variant), with a bootstrap "
        f"95% CI over seeds ({RESAMPLES:,} resamples, seeded). The test is the paired t-test "
        "over the seeds both variants share (same seed: same data order and G initialisation), "
        "else Welch's t-test. ✓ marks p < 0.05 with at least 3 seeds; *not significant*, "
        "p >= 0.05 with the seeds the power estimate asks for. *Seeds for 80%* is how many "
        "seeds (at least 3) would detect the observed Δ with 80% power (two-sided α = 0.05; "
        "paired: the sd of the per-seed differences).",
        "",
        "| " + " | ".join(COMPARISON_HEADER) + " |",
        "|" + "|".join("---" for _ in COMPARISON_HEADER) + "|",
    ]
    for c in comparisons:
        lines.append("| " + " | ".join(comparison_cells(c, decimals.get(c.metric, 4))) + " |")
    return "\n".join([*lines, ""])
