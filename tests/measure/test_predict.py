"""Predicting an entry's call time from its counts and a probe of the device; the skip and the ETA."""

from __future__ import annotations

import pytest

import workloads
from bench.measure.predict import Eta, Prediction, Predictor, duration, judge
from bench.measure.suites import Entry, load_suite
from bench.measure.timing import TimerConfig


def test_the_timers_minimum_and_the_skip_by_hand():
    # 10 s a call, warm-up 1 s (one call), 20 samples: 10 x (1 + 1 + 20) = 220 s, over the limit 1 + 20 = 21 s
    p = judge(10.0, warmup_s=1.0, min_reps=20, max_time_s=20.0, min_time_s=2.0, how="probe")
    assert p.need_s == pytest.approx(220.0)
    assert p.entry_s == pytest.approx(10 * 2 + 20)  # first call, warm-up call, then sampling stops at max_time_s
    assert p.skip_reason is not None
    assert p.skip_reason.startswith("predicted 10 s a call (probe): the first call, warm-up and 20 samples")
    assert "would take 3.7 min" in p.skip_reason and "timer's limit of 21 s" in p.skip_reason
    # 1 ms a call: warm-up is 1 s / 1 ms = 1000 calls; 1 ms x (1 + 1000 + 20) = 1.021 s; sampling max(2, 0.02) = 2 s
    fast = judge(0.001, warmup_s=1.0, min_reps=20, max_time_s=20.0, min_time_s=2.0)
    assert fast.need_s == pytest.approx(1.021) and fast.entry_s == pytest.approx(0.001 + 1.0 + 2.0)
    assert fast.skip_reason is None
    # no warm-up: the first call and the samples only
    assert judge(2.0, warmup_s=0.0, min_reps=3, max_time_s=600.0).need_s == pytest.approx(8.0)


def test_an_entry_just_within_its_limit_runs():
    # 1 s a call, no warm-up, 9 samples: 10 s needed against a 10 s limit: runs; 11 samples: 12 s, skipped
    assert judge(1.0, 0.0, 9, 10.0).skip_reason is None
    assert judge(1.0, 0.0, 11, 10.0).skip_reason is not None


def test_durations_read_as_a_person_reads_them():
    assert [duration(x) for x in (0.0023, 1.5, 41.0, 1100.0, 5400.0)] == ["2.3 ms", "1.5 s", "41 s", "18 min", "1.5 h"]


def entry(wid: str, timer: TimerConfig | None = None, **raw) -> Entry:
    w = workloads.get(wid)
    return Entry(w, w.parse(raw), timer or TimerConfig())


def test_the_call_is_the_roofline_of_the_probed_rates(cpu):
    pr = Predictor(cpu, flops_per_s={"fp32": 1e11}, bytes_per_s=1e10, probed_copy=True)
    gemm = entry("gemm", m=1000, n=1000, k=1000, dtype="fp32")  # 2e9 FLOP -> 0.02 s; 1.2e7 B -> 1.2 ms
    call, how = pr.call_s(gemm)
    assert call == pytest.approx(0.02) and "GFLOP/s fp32" in how
    copy = entry("copy", size_mib=100)  # bytes only: read and write
    nbytes = workloads.get("copy").counts(copy.params, cpu).bytes
    assert pr.call_s(copy)[0] == pytest.approx(nbytes / 1e10)
    assert Predictor(cpu, flops_per_s={"fp32": None}, bytes_per_s=None, probed_copy=True).predict(gemm) is None


def test_a_gpu_sized_gemm_on_a_slow_dtype_is_skipped_with_its_prediction(cpu):
    # fp16 at 3 GFLOP/s (as probed on a 2-core VM): 8192^3 is 1.1 TFLOP, about 6 minutes a call
    pr = Predictor(cpu, flops_per_s={"fp16": 3e9}, bytes_per_s=1e10, probed_copy=True)
    node = load_suite("node")
    big = next(e for e in node.entries if e.label == "gemm 8192x8192x8192 fp16")
    p = pr.predict(big)
    assert p is not None and p.call_s == pytest.approx(2 * 8192**3 / 3e9)
    assert p.skip_reason and p.skip_reason.startswith("predicted 6.1 min a call")


def test_the_real_probe_is_short_and_cached(cpu):
    pr = Predictor(cpu)
    rate = pr.gemm_flops_per_s("fp32")
    assert rate is not None and rate > 0 and pr.gemm_flops_per_s("fp32") == rate  # measured once
    assert pr.gemm_flops_per_s("fp8") is None  # the CPU has no fp8 matmul: no prediction, never a guess
    assert (pr.copy_bytes_per_s() or 0) > 0


def test_time_left_scales_the_predictions_by_how_the_run_has_gone():
    eta = Eta((2.0, 0.0, 4.0, 6.0))
    assert eta.left_s(0, 0.0) == 12.0  # nothing done: the predictions as they are
    assert eta.left_s(2, 4.0) == pytest.approx(10.0 * 4.0 / 2.0)  # twice as slow as predicted so far
    assert eta.text(2, 5.0, 4.0) == "about 19 s left"  # 20 s as the entry began, 1 s into it
    assert eta.text(4, 9.0, 9.0) == ""
    e = entry("gemm", TimerConfig(warmup_s=0.5, min_time_s=1.0), m=8, n=8, k=8)
    assert Eta.of([e, e], [None, Prediction(1.0, 1.0, 3.0, "too long")]).predicted_s == (1.5, 0.0)
