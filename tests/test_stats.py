"""The paired test behind every verdict: exact, corrected, and silent where n is too small."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lmao.stats import MIN_PAIRS, holm, paired_test, sign_flip_p, verdict


def brute_force_p(differences: np.ndarray) -> float:
    """Every one of the 2^n sign patterns, counted by hand."""
    observed = abs(differences.mean())
    flips = [abs((differences * signs).mean()) >= observed - 1e-12
             for signs in itertools.product([1, -1], repeat=len(differences))]
    return sum(flips) / len(flips)


@pytest.mark.parametrize("seed", range(4))
def test_the_sign_flip_p_value_is_exact(seed):
    rng = np.random.default_rng(seed)
    differences = rng.normal(0.01, 0.02, size=7)
    assert sign_flip_p(differences) == pytest.approx(brute_force_p(differences))


def test_six_pairs_is_the_least_that_can_reach_five_percent():
    assert MIN_PAIRS == 6
    assert sign_flip_p(np.full(5, 0.1)) == pytest.approx(2 / 2**5)  # 0.0625: never below
    assert sign_flip_p(np.full(6, 0.1)) == pytest.approx(2 / 2**6)


def test_three_pairs_never_give_a_verdict_however_large_the_difference():
    test = paired_test(np.array([0.20, 0.25, 0.30]))
    assert test.p == pytest.approx(0.25)
    assert verdict(test, test.p).startswith("no verdict: n = 3 pairs")
    assert verdict(test, 0.0).startswith("no verdict")  # not even with a tiny corrected p


def test_a_known_difference_is_detected_and_none_is_not():
    rng = np.random.default_rng(0)
    shifted = paired_test(rng.normal(0.03, 0.01, size=10))
    assert shifted.ci_low > 0 and shifted.p < 0.01
    assert verdict(shifted, shifted.p) == "better"
    assert verdict(paired_test(-rng.normal(0.03, 0.01, size=10)), 0.002) == "worse"
    null = paired_test(rng.normal(0.0, 0.01, size=10))
    assert null.ci_low < 0 < null.ci_high and null.p > 0.05
    said = verdict(null, null.p)
    assert said.startswith("no detectable difference (n = 10, smallest detectable ≈ ")


def test_the_detectable_difference_shrinks_with_more_pairs():
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 0.02, size=64)
    assert paired_test(noise[:8]).detectable > paired_test(noise).detectable > 0


def test_holm_adjusts_step_down_and_keeps_the_order():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5]
    # two comparisons at p = 0.03 each: significant alone, not after correction
    assert all(p >= 0.05 for p in holm([0.03, 0.03]))


def test_too_few_pairs_for_the_number_of_comparisons_is_no_verdict_not_no_difference():
    """Six pairs all +4 points: p = 2/64 alone (a verdict), but Holm across three inits
    makes the smallest possible p 3 × 2/64 = 0.094, so the design cannot decide; the report
    must say so rather than call it "no detectable difference"."""
    from lmao.stats import min_pairs

    test = paired_test(np.array([0.040, 0.043, 0.038, 0.045, 0.039, 0.041]))
    assert test.p == pytest.approx(2 / 64)
    assert verdict(test, test.p, comparisons=1) == "better"
    said = verdict(test, holm([test.p] * 3)[0], comparisons=3)
    assert said.startswith("no verdict: n = 6 pairs") and "needs ≥ 7" in said
    assert [min_pairs(k) for k in (1, 2, 3, 6, 7)] == [6, 7, 7, 8, 9]
