"""The bootstrap compare draws: its exact distribution, the former way's within noise, and the coverage it promises.

Every check runs on fixed seeds, so each gives the same answer on every machine; the tolerances
are the statistics' own (a Kolmogorov-Smirnov distance, a binomial spread), stated where used.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.compare.bootstrap import bootstrap_medians, median_change


def former_bootstrap_medians(groups: list[np.ndarray], n_resamples: int, seed: int) -> np.ndarray:
    """The former way, kept as the reference: build every resample (the records with replacement, then the
    samples within each picked record) and take its median."""
    rng = np.random.default_rng(seed)
    out = np.empty(n_resamples)
    for i in range(n_resamples):
        picked = [groups[j] for j in rng.integers(0, len(groups), len(groups))]
        out[i] = np.median(np.concatenate([g[rng.integers(0, g.size, g.size)] for g in picked]))
    return out


def ks_distance(x: np.ndarray, y: np.ndarray) -> float:
    """The largest gap between the empirical CDFs of x and y."""
    x, y = np.sort(x), np.sort(y)
    at = np.concatenate([x, y])
    return float(np.max(np.abs(np.searchsorted(x, at, "right") / x.size - np.searchsorted(y, at, "right") / y.size)))


def ks_limit(n: int, m: int) -> float:
    """Two-sample Kolmogorov-Smirnov critical distance at the 0.1% level, c(0.001) = 1.95 (conservative for
    discrete distributions such as these: equal draws make the distance smaller, not larger)."""
    return 1.95 * math.sqrt((n + m) / (n * m))


RNG = np.random.default_rng(2026)
CASES = {
    "one record, odd": [RNG.lognormal(0.0, 0.3, 41)],
    "one record, even": [RNG.lognormal(0.0, 0.3, 40)],
    "four records pooled": [RNG.lognormal(mu, 0.1, 30) for mu in (0.0, 0.05, 0.10, 0.02)],
    "records of different sizes": [RNG.lognormal(mu, 0.1, n) for mu, n in ((0.0, 11), (0.1, 20), (0.05, 7))],
    "tied values": [np.round(RNG.lognormal(0.0, 0.3, 40), 1), np.round(RNG.lognormal(0.0, 0.3, 33), 1)],
    "two samples": [np.array([1.0, 2.0])],
}


@pytest.mark.parametrize("name", CASES)
def test_the_draws_have_the_former_ways_distribution(name):
    groups = CASES[name]
    n = 8000
    old = former_bootstrap_medians(groups, n, seed=1)
    new = bootstrap_medians(groups, n, seed=2)
    assert ks_distance(old, new) < ks_limit(n, n)
    pooled = np.concatenate(groups)  # every draw is a sample or the mean of two (an even resample's median)
    assert np.isin(new, np.concatenate([pooled, ((pooled[:, None] + pooled) / 2).ravel()])).all()


def test_one_record_follows_the_exact_distribution_of_its_bootstrap_median():
    """For n distinct sorted values and n odd, the resample's median is at most the i-th (0-based) exactly when
    at least (n + 1) / 2 of its n draws are among the first i + 1: P = P(Binomial(n, (i + 1) / n) >= (n + 1) / 2)."""
    x = np.array([3.0, 1.0, 4.0, 1.5, 9.0, 2.6, 5.0])  # 7 distinct values
    n, need, draws = x.size, (x.size + 1) // 2, 40_000
    exact = [sum(math.comb(n, j) * ((i + 1) / n) ** j * (1 - (i + 1) / n) ** (n - j) for j in range(need, n + 1))
             for i in range(n)]  # fmt: skip
    new = bootstrap_medians([x], draws, seed=3)
    seen = [float(np.mean(new <= v)) for v in np.sort(x)]
    # one-sample Kolmogorov-Smirnov limit at the 0.1% level: 1.95 / sqrt(draws) = 0.0098
    assert max(abs(a - b) for a, b in zip(seen, exact, strict=True)) < 1.95 / math.sqrt(draws)
    assert exact[-1] == pytest.approx(1.0)


def test_the_same_samples_and_seed_give_the_same_draws():
    groups = CASES["four records pooled"]
    assert np.array_equal(bootstrap_medians(groups, 500, seed=7), bootstrap_medians(groups, 500, seed=7))
    assert not np.array_equal(bootstrap_medians(groups, 500, seed=7), bootstrap_medians(groups, 500, seed=8))


def test_a_single_sample_and_no_samples():
    assert np.array_equal(bootstrap_medians([[2.5]], 10), np.full(10, 2.5))
    with pytest.raises(ValueError, match="cannot bootstrap zero samples"):
        bootstrap_medians([[], []], 10)


def test_intervals_agree_with_the_former_ways_within_its_own_seed_to_seed_spread():
    """The interval of a fixed 3% slowdown, pooled baseline against one candidate record: the new ends lie within
    the range the former way gives over ten seeds, widened by that range (its bootstrap noise)."""
    rng = np.random.default_rng(11)
    base = [rng.lognormal(0.0, 0.05, 60) for _ in range(3)]
    cand = [rng.lognormal(math.log(1.03), 0.05, 60)]
    b_med, c_med = float(np.median(np.concatenate(base))), float(np.median(cand[0]))

    def ends(draw, seed):
        ci = median_change(b_med, c_med, draw(base, 2000, seed), draw(cand, 2000, seed + 1))
        return ci.low, ci.high

    old = np.array([ends(former_bootstrap_medians, 100 + 2 * s) for s in range(10)])
    new = np.array([ends(bootstrap_medians, 200 + 2 * s) for s in range(10)])
    spread = old.max(axis=0) - old.min(axis=0)
    assert np.all(new.mean(axis=0) > old.min(axis=0) - spread) and np.all(new.mean(axis=0) < old.max(axis=0) + spread)
    assert abs(new.mean(axis=0) - old.mean(axis=0)).max() < 0.005  # the ends agree to half a percent of time


def test_the_95pct_interval_covers_a_known_ratio_of_medians_in_95pct_of_trials():
    """Baseline and candidate drawn from lognormals whose medians are exp(mu): the true change is
    exp(mu_c - mu_b) - 1 = +3%. Over 400 trials the interval must cover it 95% of the time, within three
    binomial standard deviations, sqrt(0.95 * 0.05 / 400) = 1.09 points each."""
    rng = np.random.default_rng(19)
    trials, n, truth = 400, 51, 0.03
    covered = 0
    for t in range(trials):
        b = rng.lognormal(0.0, 0.2, n)
        c = rng.lognormal(math.log(1 + truth), 0.2, n)
        ci = median_change(float(np.median(b)), float(np.median(c)), bootstrap_medians([b], 1000, seed=2 * t),
                           bootstrap_medians([c], 1000, seed=2 * t + 1))  # fmt: skip
        covered += ci.low <= truth <= ci.high
    assert abs(covered / trials - 0.95) <= 3 * math.sqrt(0.95 * 0.05 / trials)
