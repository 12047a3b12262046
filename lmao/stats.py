"""Paired comparisons a reviewer accepts: an exact sign-flip test, an interval, Holm.

A comparison of an init with its baseline is a set of paired differences (the same task,
hyper-parameter sample and seed, once with each init). Under the null hypothesis each
difference is as likely to have either sign, so flipping signs in every one of the 2^n
ways gives the exact distribution of their mean: the sign-flip permutation test
(`scipy.stats.permutation_test`, paired `samples`). Its smallest two-sided p-value is
2 / 2^n, so fewer than 6 pairs can never reach p < 0.05, and such comparisons get no
verdict. Across the inits of one task the p-values are corrected with Holm's step-down
method (family-wise error 5%); a verdict ("better"/"worse") needs a corrected p < 0.05.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ALPHA = 0.05
EXACT_UP_TO = 20  # pairs; beyond, 100,000 random sign flips (seeded)
MIN_PAIRS = math.floor(math.log2(2 / ALPHA)) + 1  # 2 / 2^n < 0.05 needs n ≥ 6 (one comparison)


@dataclass(frozen=True)
class PairedTest:
    """One comparison: n pairs, mean difference, 95% t interval, exact and Holm p."""

    n: int
    difference: float
    ci_low: float
    ci_high: float
    p: float
    detectable: float  # ≈ smallest difference n pairs with this spread detect (80% power)


def sign_flip_p(differences: np.ndarray, seed: int = 0) -> float:
    """Two-sided p-value of the mean of paired differences under random signs."""
    from scipy.stats import permutation_test

    data = np.asarray(differences, dtype=float)
    if len(data) == 0:
        return float("nan")
    if len(data) == 1 or np.all(data == 0):
        return 1.0  # both signs of one difference are as extreme as it
    result = permutation_test(
        (data,), lambda x, axis: np.mean(x, axis=axis), permutation_type="samples",
        vectorized=True, alternative="two-sided",
        n_resamples=np.inf if len(data) <= EXACT_UP_TO else 100_000,
        rng=np.random.default_rng(seed))
    return float(result.pvalue)


def paired_test(differences: np.ndarray) -> PairedTest:
    """The exact test, a 95% t interval of the mean difference and the difference these
    pairs could detect (normal approximation: (z_.975 + z_.8) × sd / √n)."""
    from scipy import stats

    data = np.asarray(differences, dtype=float)
    n = len(data)
    mean = float(data.mean()) if n else float("nan")
    if n >= 2 and np.std(data) > 0:
        low, high = stats.ttest_1samp(data, 0.0).confidence_interval(0.95)
        sd = float(data.std(ddof=1))
    else:  # one pair, or every difference the same: no spread to build an interval on
        low = high = float("nan")
        sd = 0.0
    detectable = (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * sd / math.sqrt(n) if n \
        else float("nan")
    return PairedTest(n, mean, float(low), float(high), sign_flip_p(data), float(detectable))


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error), in the input's order."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [float("nan")] * len(p_values)
    running = 0.0
    m = len(p_values)
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def min_pairs(comparisons: int = 1) -> int:
    """The fewest pairs with which the exact two-sided test, Holm-corrected across this many
    comparisons, can reach p < ALPHA at all: comparisons × 2 / 2^n < ALPHA."""
    return math.floor(math.log2(2 * comparisons / ALPHA)) + 1


def verdict(test: PairedTest, p_holm: float, comparisons: int = 1) -> str:
    """'better' / 'worse' only when the corrected p is below 5%; "no verdict" (not "no
    difference") when the design could not have reached 5%: too few pairs for the number of
    comparisons corrected for."""
    needed = min_pairs(comparisons)
    if test.n < needed:
        family = "" if comparisons == 1 else f" with {comparisons} comparisons corrected for"
        return (f"no verdict: n = {test.n} pairs; an exact test{family} needs ≥ {needed} "
                f"to reach p < {ALPHA}")
    if p_holm < ALPHA:
        return "better" if test.difference > 0 else "worse"
    return (f"no detectable difference (n = {test.n}, smallest detectable ≈ "
            f"{test.detectable * 100:.1f} points)")
