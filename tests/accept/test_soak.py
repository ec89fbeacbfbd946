"""The soak's series against hand-computed figures: first, steady state, drift, throttle shares."""

from __future__ import annotations

import numpy as np
import pytest

from bench.accept.soak import drift_pct_per_min, soak_series
from bench.measure.soak import entries


def interval(i: int, tflops: float | None, *, gpu: int = 0, shares: dict | None = None, status: str = "ok",
             start_s: float | None = None, interval_s: float = 10.0) -> dict:  # fmt: skip
    """A soak interval's record; timestamps at start_s .. start_s + interval_s when given."""
    r = {"workload": "gemm", "phase": "soak", "soak_interval": i, "soak_interval_s": interval_s, "status": status,
         "hostname": "n1", "gpu_index": gpu, "device_kind": "cuda", "tflops": tflops,
         "sm_clock_mean_mhz": 1980, "clock_event_shares": shares}  # fmt: skip
    if start_s is not None:
        r["started_at"] = f"2026-11-29T10:00:{start_s:06.3f}Z"
        r["finished_at"] = f"2026-11-29T10:00:{start_s + interval_s:06.3f}Z"
    return r


def test_a_steady_decline_by_hand():
    # 100, 98, 96, 94 TFLOP/s at interval middles 5, 15, 25, 35 s: slope -0.2 TFLOP/s per second,
    # mean 97, so -0.2 / 97 * 100 * 60 = -12.371 % per minute; steady = median(96, 94) = 95.
    (s,) = soak_series([interval(i, v) for i, v in enumerate([100, 98, 96, 94])])
    assert [r["t_mid_s"] for r in s.rows] == [5.0, 15.0, 25.0, 35.0]
    assert (s.first, s.steady) == (100, 95.0) and s.steady_over_first == pytest.approx(0.95)
    d = s.drift()
    assert d is not None and d.pct_per_min == pytest.approx(-0.2 / 97 * 6000, rel=1e-9)
    # a perfect line: every resample of its points has the same slope
    assert d.low == pytest.approx(d.pct_per_min) and d.high == pytest.approx(d.pct_per_min)


def test_noise_widens_the_interval_and_a_flat_series_has_no_drift():
    values = [100, 101, 99, 100, 101, 99, 100, 101]
    (s,) = soak_series([interval(i, v) for i, v in enumerate(values)])
    d = s.drift()
    assert d is not None and d.low is not None and d.high is not None
    assert d.low < 0 < d.high and abs(d.pct_per_min) < 1  # no trend: zero inside the interval
    slope = np.polyfit([5 + 10 * i for i in range(8)], values, 1)[0]
    assert d.pct_per_min == pytest.approx(slope / 100.125 * 6000)


def test_times_come_from_the_timestamps_when_there_are_gaps():
    # intervals of 10 s starting at 0, 12 and 24 s (2 s of set-up between them): middles 5, 17, 29 s
    (s,) = soak_series([interval(i, 100.0 - i, start_s=12.0 * i) for i in range(3)])
    assert [r["t_mid_s"] for r in s.rows] == pytest.approx([5.0, 17.0, 29.0])


def test_throttle_shares_are_the_mean_over_intervals_and_gpus_are_apart():
    rows = [interval(0, 100, shares={"sw_power_cap": 0.5}), interval(1, 99, shares={"sw_power_cap": 0.1,
            "hw_thermal_slowdown": 0.3}), interval(0, 50, gpu=1), interval(1, 50, gpu=1)]  # fmt: skip
    a, b = soak_series(rows)
    assert a.throttle_shares() == pytest.approx({"hw_thermal_slowdown": 0.15, "sw_power_cap": 0.3})
    assert (a.gpu, b.gpu, b.first, b.throttle_shares()) == ("GPU 0", "GPU 1", 50, {})


def test_a_failed_interval_is_kept_but_not_measured():
    (s,) = soak_series([interval(0, 100), interval(1, None, status="failed"), interval(2, 90)])
    assert len(s.rows) == 3 and s.throughput == [100, 90] and s.steady == 90


def test_suite_records_are_not_soak_intervals():
    assert soak_series([{"workload": "gemm", "status": "ok", "tflops": 1.0, "hostname": "n1"}]) == []


def test_drift_is_relative_to_the_mean():
    assert drift_pct_per_min(np.array([0.0, 60.0]), np.array([10.0, 9.0])) == pytest.approx(-1 / 9.5 * 100)


def test_soak_entries_cover_the_time_and_carry_their_index():
    got = entries("cpu", seconds=2.5, interval_s=1.0)
    assert len(got) == 3 and [dict(e.tags)["soak_interval"] for e in got] == [0, 1, 2]
    e = got[0]
    assert (e.timer.warmup_s, e.timer.min_time_s, e.timer.max_time_s, e.timer.flush_l2) == (0, 1.0, 1.0, False)
    assert dict(e.tags)["label"] == "256x256x256 fp32 soak 1/3" and e.params.dtype == "fp32"
    assert entries("cuda", 20, 10)[0].params.m == 8192
    with pytest.raises(ValueError, match="positive seconds"):
        entries("cpu", 0, 1)
    with pytest.raises(ValueError, match="more than 10000"):
        entries("cpu", 1e6, 1)
