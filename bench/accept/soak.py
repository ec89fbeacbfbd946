"""A soak's intervals as a series per GPU: first against steady state, drift, time under throttling.

A soak is a sustained bf16 GEMM (bench/measure/soak.py) measured in back-to-back intervals; each
interval is a record with `phase = "soak"` and its `soak_interval` index. Read records only.

- first: the first interval's throughput (the card cold, or as it was found).
- steady: the median throughput of the second half of the intervals (the card warm).
- drift: the least-squares slope of throughput against time, as % of the series mean per minute,
  with a 95% interval from a pairs bootstrap (2,000 resamples, fixed seed). Negative: slowing.
- throttle shares: per clock-event reason, the mean over intervals of the share of samples in
  which the reason held the clocks (intervals are of equal length, so equal weights).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from bench.results.identity import node_and_gpu

N_RESAMPLES = 2000
SERIES_FIELDS = ("tflops", "sm_clock_mean_mhz", "mem_clock_mean_mhz", "power_mean_w", "temperature_max_c")


@dataclass(frozen=True)
class Drift:
    """Throughput's trend over the soak: % of its mean per minute, with a 95% interval."""

    pct_per_min: float
    low: float | None  # None with fewer than 3 intervals: no interval worth the name
    high: float | None


@dataclass
class SoakSeries:
    """One GPU's soak: its intervals in order, and what they add up to."""

    node: str
    gpu: str
    interval_s: float | None
    device_kind: str | None = None  # cuda or cpu
    rows: list[dict[str, Any]] = field(default_factory=list)  # per interval: t_mid_s and SERIES_FIELDS

    @property
    def throughput(self) -> list[float]:
        return [r["tflops"] for r in self.rows if r.get("tflops") is not None]

    @property
    def first(self) -> float | None:
        return self.throughput[0] if self.throughput else None

    @property
    def steady(self) -> float | None:
        """Median throughput of the second half of the intervals (all of them when there is one)."""
        values = self.throughput
        return float(np.median(values[len(values) // 2 :])) if values else None

    @property
    def steady_over_first(self) -> float | None:
        first, steady = self.first, self.steady
        return steady / first if first and steady is not None else None

    def drift(self, seed: int = 0) -> Drift | None:
        """The throughput's slope against time, or None with fewer than 2 measured intervals."""
        points = [(r["t_mid_s"], r["tflops"]) for r in self.rows if r.get("tflops") is not None]
        if len(points) < 2:
            return None
        t, y = np.array([p[0] for p in points]), np.array([p[1] for p in points])
        mean = float(np.mean(y))  # every resample's slope is put against the whole series' mean
        slope = drift_pct_per_min(t, y, mean)
        if len(points) < 3:
            return Drift(slope, None, None)
        rng = np.random.default_rng(seed)
        picks = rng.integers(0, len(t), size=(N_RESAMPLES, len(t)))
        slopes = [drift_pct_per_min(t[i], y[i], mean) for i in picks if np.ptp(t[i]) > 0]
        low, high = np.percentile(slopes, [2.5, 97.5])
        return Drift(slope, float(low), float(high))

    def throttle_shares(self) -> dict[str, float]:
        """Mean share of samples under each clock-event reason, over the intervals."""
        totals: dict[str, float] = defaultdict(float)
        for r in self.rows:
            for reason, share in (r.get("clock_event_shares") or {}).items():
                totals[reason] += float(share)
        return {reason: total / len(self.rows) for reason, total in sorted(totals.items())} if self.rows else {}


def drift_pct_per_min(t_s: np.ndarray, values: np.ndarray, reference: float | None = None) -> float:
    """Least-squares slope of `values` against `t_s`, as % per minute of `reference` (their mean by default)."""
    slope_per_s = np.polyfit(t_s, values, 1)[0]  # d(value)/dt
    return float(slope_per_s / (np.mean(values) if reference is None else reference) * 100 * 60)


def _seconds(stamp: Any) -> float | None:
    """A record's ISO 8601 time ("...Z") as seconds since the epoch; None where it is missing or odd."""
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _t_mid_s(record: dict[str, Any], t0: float | None, index: int, interval_s: float) -> float:
    """The interval's middle in seconds from the soak's start: from its timestamps where both are
    there (setting up each interval takes a moment), else from its index."""
    start, end = _seconds(record.get("started_at")), _seconds(record.get("finished_at"))
    if t0 is not None and start is not None and end is not None:
        return (start + end) / 2 - t0
    return (index + 0.5) * interval_s


def soak_series(records: list[dict[str, Any]]) -> list[SoakSeries]:
    """Each GPU's soak intervals in order (records of other phases are left out)."""
    per_gpu: dict[tuple[str, str], SoakSeries] = {}
    starts: dict[tuple[str, str], float | None] = {}
    for r in sorted((r for r in records if r.get("phase") == "soak"), key=lambda r: r.get("soak_interval", 0)):
        node, gpu = node_and_gpu(r)
        interval_s = float(r.get("soak_interval_s") or 0)
        series = per_gpu.setdefault((node, gpu), SoakSeries(node, gpu, interval_s, r.get("device_kind")))
        t0 = starts.setdefault((node, gpu), _seconds(r.get("started_at")))
        index = int(r.get("soak_interval") or 0)
        row: dict[str, Any] = {"interval": index, "status": r.get("status"),
                               "t_mid_s": _t_mid_s(r, t0, index, interval_s)}  # fmt: skip
        if r.get("status") == "ok":
            row.update({k: r.get(k) for k in SERIES_FIELDS})
            row["clock_event_shares"] = r.get("clock_event_shares")
        series.rows.append(row)
    return list(per_gpu.values())
