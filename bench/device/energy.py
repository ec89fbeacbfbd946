"""Window arithmetic: energy, power and card behaviour over one timed window, as record fields.

Pure functions of a `telemetry.Window` (no NVML, no clock), so every figure can be checked against
a hand-computed trace.

- Energy: the card's cumulative counter (end - start) where it has one and it advanced; else the
  power samples integrated by the trapezoid rule, with the power at the window's edges
  interpolated between the samples either side. `energy_source` names which. Where both exist
  they are compared, and a gap above `DISAGREE_ABOVE` is flagged.
- Mean power is energy / window length (time-weighted); p99 and max come from the samples
  inside the window.
- Clock events: NVML's clock-event (throttle) reason bits by name, and the share of samples that
  had each set.
- Per unit of work: the window holds `calls` calls of the timed function, so
  J/token = energy / (tokens per call x calls), J/TFLOP = energy / (FLOPs per call x calls / 1e12),
  tokens/s per W = tokens per joule = tokens per call x calls / energy. The window also holds
  what surrounds the calls: the L2 flush before each (where the record says l2_flushed), the GPU
  spin before each chunk and the host's syncs between chunks; `energy_timed_share` (the timed
  calls' time / the window) says how much of the window was the calls themselves.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from bench.device.telemetry import Sample, Window

# Counter and integrated energy further apart than this (relative to the counter) are flagged.
DISAGREE_ABOVE = 0.10


def _power_at(t: float, before: tuple[float, float], after: tuple[float, float]) -> float:
    (ta, pa), (tb, pb) = before, after
    return pa if tb == ta else pa + (pb - pa) * (t - ta) / (tb - ta)


def integrate_power(points: list[tuple[float, float]], t0: float, t1: float) -> tuple[float | None, str | None]:
    """Joules between t0 and t1 from (time s, power W) points, trapezoid rule, edges interpolated.

    Needs a point at or before t0 and one at or after t1; (None, why) otherwise.
    """
    points = sorted(points)
    if len(points) < 2 or points[0][0] > t0 or points[-1][0] < t1:
        return None, "no power readings on both sides of the window"
    if t1 <= t0:
        return 0.0, None
    i0 = max(i for i, (t, _) in enumerate(points) if t <= t0)
    i1 = min(i for i, (t, _) in enumerate(points) if t >= t1)
    edge0 = _power_at(t0, points[i0], points[min(i0 + 1, len(points) - 1)])
    edge1 = _power_at(t1, points[max(i1 - 1, 0)], points[i1])
    inner = [(t, p) for t, p in points[i0 + 1 : i1] if t0 < t < t1]
    trace = [(t0, edge0), *inner, (t1, edge1)]
    joules = sum((tb - ta) * (pa + pb) / 2 for (ta, pa), (tb, pb) in itertools.pairwise(trace))
    return joules, None


# NVML clock-event (throttle) reason bits, named after NVML's constants.
CLOCK_EVENT_REASONS: dict[int, str] = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
    0x200: "board_limit",
    0x400: "reliability",
}
# gpu_idle says the GPU had no work at that instant; every other reason held its clocks down.
NOT_A_LIMIT = 0x1


def reason_names(bits: int) -> list[str]:
    """Names of the clock-event reasons set in `bits` (unknown bits by their value)."""
    names = []
    bit = 1
    while bit <= bits:
        if bits & bit:
            names.append(CLOCK_EVENT_REASONS.get(bit, f"bit_{bit:#x}"))
        bit <<= 1
    return names


def clock_event_shares(samples: list[Sample]) -> tuple[dict[str, float], float | None]:
    """Share of samples with each clock-event reason set, and the share held down by any reason
    but gpu_idle; ({}, None) without readings."""
    bits = [s.clock_event_reasons for s in samples if s.clock_event_reasons is not None]
    if not bits:
        return {}, None
    n = len(bits)
    shares: dict[str, float] = {}
    for b in bits:
        for name in reason_names(b):
            shares[name] = shares.get(name, 0) + 1 / n
    order = list(CLOCK_EVENT_REASONS.values())
    shares = dict(sorted(shares.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))
    limited = sum(1 for b in bits if b & ~NOT_A_LIMIT) / n
    return shares, limited


def _values(samples: list[Sample], name: str) -> list[float]:
    return [v for s in samples if (v := getattr(s, name)) is not None]


def _mean(xs: list[float]) -> float | None:
    return float(np.mean(xs)) if xs else None


def energy_fields(w: Window, threshold: float = DISAGREE_ABOVE) -> dict[str, Any]:
    """The window's energy, its source and both estimates (counter and integrated power)."""
    counter, counter_reason = None, w.counter_reason
    if w.counter_start_j is not None and w.counter_end_j is not None:
        counter = w.counter_end_j - w.counter_start_j
        if counter <= 0 < w.duration_s:
            counter, counter_reason = None, f"energy counter did not advance in {w.duration_s:.3g} s"
    points = [(s.t_s, s.power_w) for s in w.samples if s.power_w is not None]
    integrated, integrated_reason = (
        integrate_power(points, w.t0_s, w.t1_s) if points else (None, w.reason or "no power readings")
    )
    if counter is not None:
        energy, source, reason = counter, "nvml_energy_counter", None
    elif integrated is not None:
        energy, source, reason = integrated, "nvml_power_integrated", None
    else:
        energy, source = None, None
        reason = w.reason if w.source == "none" else f"counter: {counter_reason}; power: {integrated_reason}"
    gap = abs(integrated - counter) / counter if counter and integrated is not None else None
    return {
        "telemetry_source": w.source,
        "power_reading": w.power_reading,
        "telemetry_interval_s": w.interval_s if w.source != "none" else None,
        "energy_window_s": w.duration_s,
        "energy_j": energy,
        "energy_source": source,
        "energy_reason": reason,
        "energy_counter_j": counter,
        "energy_integrated_j": integrated,
        "energy_disagreement": gap,
        "energy_disagrees": None if gap is None else gap > threshold,
    }


def behaviour_fields(w: Window) -> dict[str, Any]:
    """Power spread, clocks, temperature, utilisation, memory and throttling inside the window."""
    inside = w.inside()
    power = _values(inside, "power_w")
    sm = _values(inside, "sm_clock_mhz")
    mem_used = _values(inside, "mem_used_bytes")
    temps = _values(inside, "temperature_c")
    shares, limited = clock_event_shares(inside)
    return {
        "n_telemetry_samples": len(inside) if w.source != "none" else None,
        "power_p99_w": float(np.percentile(power, 99)) if power else None,
        "power_max_w": max(power) if power else None,
        "power_limit_w": w.power_limit_w,
        "sm_clock_min_mhz": min(sm) if sm else None,
        "sm_clock_mean_mhz": _mean(sm),
        "mem_clock_mean_mhz": _mean(_values(inside, "mem_clock_mhz")),
        "temperature_max_c": max(temps) if temps else None,
        "gpu_util_mean_pct": _mean(_values(inside, "gpu_util_pct")),
        "mem_util_mean_pct": _mean(_values(inside, "mem_util_pct")),
        "vram_used_peak_bytes": int(max(mem_used)) if mem_used else None,
        "clock_event_shares": shares or None,
        "clock_limited_share": limited,
    }


def _per(energy: float | None, amount: float | None) -> float | None:
    return energy / amount if energy is not None and amount else None


def _host_as_device(fields: dict[str, Any], w: Window) -> None:
    """On the CPU the host's RAPL energy is the device's energy."""
    if fields["energy_j"] is None:
        host_j = w.host_joules
        fields.update(energy_j=host_j, energy_source="rapl" if host_j is not None else None)
        fields["energy_reason"] = None if host_j is not None else f"{fields['energy_reason']}; RAPL: {w.host_reason}"


def window_fields(
    w: Window,
    calls: int,
    timed_s: float,
    flops_per_call: float | None,
    tokens_per_call: float | None,
    idle_power_w: float | None,
    host_is_device: bool = False,
) -> dict[str, Any]:
    """Every telemetry field of one measurement's record; `timed_s` is the sum of the timed calls.

    `host_is_device`: the benchmarked device is the CPU, so the host's RAPL energy is its energy.
    """
    fields = energy_fields(w)
    host_j = w.host_joules
    if host_is_device:
        _host_as_device(fields, w)
    energy, seconds = fields["energy_j"], w.duration_s
    tokens = tokens_per_call * calls if tokens_per_call else None
    power_mean = energy / seconds if energy is not None and seconds > 0 else None
    fields.update(
        {
            "energy_window_calls": calls,
            "energy_timed_share": timed_s / seconds if seconds > 0 else None,
            "power_mean_w": power_mean,
            **behaviour_fields(w),
            "energy_per_call_j": _per(energy, calls),
            "energy_per_token_j": _per(energy, tokens),
            "energy_per_tflop_j": _per(energy, flops_per_call * calls / 1e12 if flops_per_call else None),
            "tokens_per_s_per_w": tokens / energy if tokens and energy else None,
            "idle_power_w": idle_power_w,
            "energy_above_idle_j": (
                energy - idle_power_w * seconds if energy is not None and idle_power_w is not None else None
            ),
            "cpu_energy_j": host_j,
            "cpu_power_mean_w": host_j / seconds if host_j is not None and seconds > 0 else None,
            "cpu_energy_reason": w.host_reason,
        }
    )
    return fields


def counter_period_s(samples: list[Sample]) -> float | None:
    """Median time between changes of the energy counter as sampled (at least the sampling interval)."""
    changes = [b.t_s for a, b in itertools.pairwise(samples) if a.energy_j is not None
               and b.energy_j is not None and b.energy_j != a.energy_j]  # fmt: skip
    return float(np.median(np.diff(changes))) if len(changes) >= 3 else None


def idle_fields(w: Window, requested_s: float, host_is_device: bool = False) -> dict[str, Any]:
    """The idle baseline for the run header: the device's power at rest before any workload."""
    e = energy_fields(w)
    if host_is_device:
        _host_as_device(e, w)
    b = behaviour_fields(w)
    seconds = w.duration_s
    host_j = w.host_joules
    return {
        "idle_requested_s": requested_s,
        "idle_window_s": seconds,
        "idle_power_w": e["energy_j"] / seconds if e["energy_j"] is not None and seconds > 0 else None,
        "idle_energy_source": e["energy_source"],
        "idle_reason": e["energy_reason"],
        "idle_energy_disagreement": e["energy_disagreement"],
        "idle_power_max_w": b["power_max_w"],
        "idle_temperature_max_c": b["temperature_max_c"],
        "idle_sm_clock_mean_mhz": b["sm_clock_mean_mhz"],
        "idle_vram_used_bytes": b["vram_used_peak_bytes"],
        "idle_clock_event_shares": b["clock_event_shares"],
        "idle_cpu_power_w": host_j / seconds if host_j is not None and seconds > 0 else None,
        "idle_cpu_reason": w.host_reason,
        "energy_counter_period_s": counter_period_s(w.samples),
    }
