"""Tests of the timing statistics (bench/measure/stats.py) against hand-computed values and invariants."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.measure.stats import DEFAULT_CV_THRESHOLD, Summary, is_unstable, summarize

# --- hand-computed values ------------------------------------------------------------------


def test_summarize_skewed_samples_by_hand() -> None:
    s = summarize([1, 2, 3, 4, 100])
    # n = 5; sorted already; median = middle element = 3; mean = 110 / 5 = 22
    assert s.n == 5
    assert s.median == 3
    assert s.mean == 22
    # linear interpolation at position q * (n - 1):
    # p5:  0.05 * 4 = 0.2 -> 1 + 0.2 * (2 - 1)   = 1.2
    # p95: 0.95 * 4 = 3.8 -> 4 + 0.8 * (100 - 4) = 80.8
    assert s.p5 == pytest.approx(1.2, rel=1e-12)
    assert s.p95 == pytest.approx(80.8, rel=1e-12)
    # deviations from 22: -21 -20 -19 -18 78; squares 441 + 400 + 361 + 324 + 6084 = 7610
    # sample variance = 7610 / (5 - 1) = 1902.5; stdev = sqrt(1902.5) ~ 43.6176
    assert s.stdev == pytest.approx(math.sqrt(1902.5), rel=1e-12)
    assert s.stdev == pytest.approx(43.6176, abs=1e-4)
    # cv = stdev / mean = 43.6176 / 22 ~ 1.98262
    assert s.cv == pytest.approx(math.sqrt(1902.5) / 22, rel=1e-12)
    assert s.min == 1
    assert s.max == 100


def test_summarize_even_count_by_hand() -> None:
    s = summarize([9, 2, 4, 5, 4, 7, 4, 5])  # order must not matter
    # sorted: 2 4 4 4 5 5 7 9; n = 8; sum = 40, mean = 5
    # median = mean of the two middle values (4 + 5) / 2 = 4.5
    assert (s.n, s.mean, s.median) == (8, 5, 4.5)
    # p5:  0.05 * 7 = 0.35 -> 2 + 0.35 * (4 - 2) = 2.7
    # p95: 0.95 * 7 = 6.65 -> 7 + 0.65 * (9 - 7) = 8.3
    assert s.p5 == pytest.approx(2.7, rel=1e-12)
    assert s.p95 == pytest.approx(8.3, rel=1e-12)
    # squared deviations: 9 1 1 1 0 0 4 16 = 32; sample variance 32 / 7 (not the population 32 / 8 = 4)
    assert s.stdev == pytest.approx(math.sqrt(32 / 7), rel=1e-12)
    assert s.stdev != pytest.approx(2.0)  # would be the ddof=0 answer
    assert s.cv == pytest.approx(math.sqrt(32 / 7) / 5, rel=1e-12)
    assert (s.min, s.max) == (2, 9)


def test_as_dict_has_every_field() -> None:
    d = summarize([1.0, 3.0]).as_dict()
    # [1, 3]: mean 2, median 2, sample stdev sqrt(((1-2)^2 + (3-2)^2) / 1) = sqrt(2)
    assert set(d) == {"n", "median", "mean", "p5", "p95", "stdev", "cv", "min", "max"}
    assert d["mean"] == 2.0 and d["median"] == 2.0
    assert d["stdev"] == pytest.approx(math.sqrt(2), rel=1e-12)


def test_single_sample_has_nan_spread_and_is_unstable() -> None:
    s = summarize([0.25])
    assert s.n == 1
    assert s.median == s.mean == s.p5 == s.p95 == s.min == s.max == 0.25
    assert math.isnan(s.stdev)  # never a made-up 0
    assert math.isnan(s.cv)
    assert is_unstable(s)


@pytest.mark.parametrize("empty", [[], ()])
def test_empty_samples_raise(empty: list[float]) -> None:
    with pytest.raises(ValueError, match="zero samples"):
        summarize(empty)


def test_constant_samples_have_zero_spread_and_are_stable() -> None:
    s = summarize([0.5] * 7)  # 0.5 is exact in binary, so the mean is exactly 0.5
    assert s.stdev == 0.0
    assert s.cv == 0.0
    assert s.median == s.p5 == s.p95 == s.min == s.max == 0.5
    assert not is_unstable(s)


def test_zero_mean_cannot_be_judged() -> None:
    s = summarize([0.0, 0.0])
    assert s.stdev == 0.0
    assert math.isnan(s.cv)  # 0 / 0 is not a CV
    assert is_unstable(s)


# --- is_unstable threshold -----------------------------------------------------------------


def _with_cv(cv: float) -> Summary:
    return Summary(n=10, median=1.0, mean=1.0, p5=1.0, p95=1.0, stdev=cv, cv=cv, min=1.0, max=1.0)


def test_cv_exactly_at_threshold_is_not_unstable() -> None:
    assert not is_unstable(_with_cv(0.05), 0.05)
    assert is_unstable(_with_cv(math.nextafter(0.05, 1.0)), 0.05)
    assert not is_unstable(_with_cv(math.nextafter(0.05, 0.0)), 0.05)


def test_default_threshold_is_five_percent() -> None:
    assert DEFAULT_CV_THRESHOLD == 0.05
    assert not is_unstable(_with_cv(0.05))
    assert is_unstable(_with_cv(0.0500001))


def test_threshold_boundary_on_a_real_summary() -> None:
    s = summarize([1.0, 3.0])  # cv = sqrt(2) / 2 ~ 0.7071
    assert s.cv == pytest.approx(math.sqrt(2) / 2, rel=1e-12)
    assert not is_unstable(s, s.cv)
    assert is_unstable(s, math.nextafter(s.cv, 0.0))
    assert not is_unstable(s, 0.71)
    assert is_unstable(s, 0.70)


# --- properties ----------------------------------------------------------------------------

samples_st = st.lists(
    st.floats(min_value=1e-9, max_value=1e3, allow_nan=False, allow_infinity=False), min_size=2, max_size=200
)


@given(samples_st)
def test_order_statistics_are_ordered(xs: list[float]) -> None:
    s = summarize(xs)
    assert s.n == len(xs)
    assert s.min == min(xs) and s.max == max(xs)
    assert s.min <= s.p5 <= s.median <= s.p95 <= s.max
    # np.mean rounds: the mean of n equal values can land an ulp or two outside [min, max]
    # (e.g. [0.1] * 3 -> 0.10000000000000002), so allow rounding-sized slack, no more
    slack = 1e-12 * s.max
    assert s.min - slack <= s.mean <= s.max + slack
    assert s.stdev >= 0
    assert s.cv >= 0
    assert not math.isnan(s.stdev) and not math.isnan(s.cv)  # n >= 2 and mean > 0


@given(st.data())
def test_summary_is_invariant_to_sample_order(data: st.DataObject) -> None:
    xs = data.draw(samples_st)
    shuffled = data.draw(st.permutations(xs))
    a, b = summarize(xs), summarize(shuffled)
    # order statistics depend only on the sorted values: exactly equal
    assert (a.n, a.median, a.p5, a.p95, a.min, a.max) == (b.n, b.median, b.p5, b.p95, b.min, b.max)
    # sums depend on summation order in the last bits only (rounding scales with the largest value)
    eps = 1e-12 * a.max
    assert a.mean == pytest.approx(b.mean, rel=1e-12)
    assert a.stdev == pytest.approx(b.stdev, rel=1e-9, abs=eps)
    assert a.cv == pytest.approx(b.cv, rel=1e-9, abs=eps / a.mean)
