"""The soak: a sustained bf16 GEMM on every GPU at once, measured in back-to-back intervals.

Each interval is a suite entry of its own, timed for `interval_s` with no warm-up (the first
interval is the card as found), so each becomes a record the moment it ends: Ctrl-C keeps every
finished interval, and under torchrun every rank starts each interval together. The record carries
`phase = "soak"`, `soak_interval` and `soak_interval_s`; its telemetry window gives the interval's
clocks, power, temperature and clock-event reasons. bench/accept/soak.py reads the series back.
"""

from __future__ import annotations

import math

import workloads
from bench.measure.suites import Entry
from bench.measure.timing import TimerConfig
from workloads.base import Params

# The GEMM that published sustained-load tests use on a GPU (gpu-burn, DCGM's targeted stress run
# large square matmuls); on the CPU a size whose call takes about a millisecond, for CI.
SHAPES = {"cuda": {"m": 8192, "n": 8192, "k": 8192, "dtype": "bf16"},
          "cpu": {"m": 256, "n": 256, "k": 256, "dtype": "fp32"}}  # fmt: skip
MAX_INTERVALS = 10_000


def entries(device_kind: str, seconds: float, interval_s: float) -> list[Entry]:
    """The soak's intervals as entries: ceil(seconds / interval_s) of them, each `interval_s` long."""
    if not (seconds > 0 and interval_s > 0):
        raise ValueError(f"a soak needs positive seconds and interval, got {seconds:g} s and {interval_s:g} s")
    n = math.ceil(seconds / interval_s - 1e-9)
    if n > MAX_INTERVALS:
        raise ValueError(f"{n} soak intervals of {interval_s:g} s: more than {MAX_INTERVALS}; give a longer interval")
    gemm = workloads.get("gemm")
    params = gemm.parse(SHAPES["cuda" if device_kind == "cuda" else "cpu"])
    # warm-up 0: the first interval is the card as found; no L2 flush: a sustained load, not a kernel figure
    timer = TimerConfig(warmup_s=0, min_time_s=interval_s, max_time_s=interval_s, min_reps=1,
                        max_reps=1_000_000, flush_l2=False)  # fmt: skip
    label = f"{gemm.label(params)} soak"
    return [_interval(gemm, params, timer, i, n, interval_s, label) for i in range(n)]


def _interval(gemm: workloads.Workload, params: Params, timer: TimerConfig, i: int, n: int, interval_s: float,
              label: str) -> Entry:  # fmt: skip
    tags = (("phase", "soak"), ("soak_interval", i), ("soak_interval_s", interval_s), ("label", f"{label} {i + 1}/{n}"))
    return Entry(gemm, params, timer, tags=tags)
