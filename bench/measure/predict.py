"""Predict an entry's call time before it runs, so that a run never starts what it cannot finish.

A short probe of the device, made once per run and dtype, measures what it does: a square GEMM in
the entry's dtype (FLOP/s) and a copy (bytes/s), each a few calls inside PROBE_S. An entry's call
is then predicted by the roofline of those two rates,

    call_s = max(flops / probed FLOP/s of its dtype, bytes / probed copy bytes/s)

and what the timer must do before it has a figure (the first call, a warm-up of at least warmup_s
and one call, then min_reps samples) is

    need_s = call_s x (1 + max(1, warmup_s / call_s) + min_reps)    (warm-up term 0 when warmup_s = 0)

An entry is skipped, with the prediction as its reason, when need_s exceeds the timer's limit,
warmup_s + max_time_s (the timer would stop sampling before it had min_reps samples, after calls
that may each take minutes). No margin is given: measured on a 2-core VM, the actual call was 1.0
to 5.7 times the prediction (GEMM 2048^3 fp32 and 8192x4096x4096 bf16 1.0x, attention fp32 1.5x,
tiny prefill 1.7x, tiny train 2.3x, fp16 GEMM 1024^3 3.1x, attention b4 s2048 bf16 5.7x): launch
overheads and less efficient kernels only make calls slower than the roofline of the probe. An
entry that the prediction let through but that then stops at the time limit short of min_reps
samples is flagged unstable (bench/measure/timing.py), never passed as a figure. An entry without
counts, or whose dtype cannot be probed, is never skipped on a prediction.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from bench.device.base import Device
from bench.measure.suites import Entry
from bench.text import duration as _short

PROBE_S = 0.05  # per probe, after its first call
PROBE_GEMM_N = {"cpu": 256, "cuda": 4096}
PROBE_COPY_MIB = {"cpu": 16.0, "cuda": 256.0}


def duration(seconds: float) -> str:
    """Seconds as a person reads them: "2.3 ms", "41 s", "18 min", "1.5 h"."""
    if seconds >= 3600:
        return f"{seconds / 3600:.2g} h"
    if seconds >= 120:
        return f"{seconds / 60:.2g} min"
    return _short(seconds) if seconds < 10 else f"{seconds:.0f} s"


@dataclass(frozen=True)
class Prediction:
    """What one entry is expected to take: a call, the timer's minimum, the whole entry; why it is skipped."""

    call_s: float
    need_s: float  # first call + warm-up + min_reps samples
    entry_s: float  # what the timer will spend: first call, warm-up, sampling (for the ETA)
    skip_reason: str | None = None


def _rate(fn: object, device: Device) -> float:
    """Calls per second of `fn` after one untimed call, over at least PROBE_S and 2 calls."""
    run = fn  # a bound method: Case.run
    run()  # type: ignore[operator]
    device.synchronize()
    n, t0 = 0, time.perf_counter()
    while n < 2 or time.perf_counter() - t0 < PROBE_S:
        run()  # type: ignore[operator]
        device.synchronize()
        n += 1
    return n / (time.perf_counter() - t0)


@dataclass
class Predictor:
    """The run's probe of its device (made lazily, once per dtype) and predictions from it."""

    device: Device
    flops_per_s: dict[str, float | None] = field(default_factory=dict)
    bytes_per_s: float | None = None
    probed_copy: bool = False

    def gemm_flops_per_s(self, dtype: str) -> float | None:
        if dtype not in self.flops_per_s:
            self.flops_per_s[dtype] = self._probe_gemm(dtype)
        return self.flops_per_s[dtype]

    def _probe_gemm(self, dtype: str) -> float | None:
        import workloads

        gemm = workloads.get("gemm")
        n = PROBE_GEMM_N["cuda" if self.device.kind == "cuda" else "cpu"]
        try:
            p = gemm.parse({"m": n, "n": n, "k": n, "dtype": dtype})
            if gemm.unsupported_reason(p, self.device):
                return None
            with gemm.prepare(p, self.device, 0) as case:
                return float(gemm.counts(p, self.device).flops or 0) * _rate(case.run, self.device) or None
        except Exception:  # a dtype the GEMM does not know, or cannot run here: no prediction
            return None

    def copy_bytes_per_s(self) -> float | None:
        if not self.probed_copy:
            self.probed_copy = True
            import workloads

            copy = workloads.get("copy")
            p = copy.parse({"size_mib": PROBE_COPY_MIB["cuda" if self.device.kind == "cuda" else "cpu"]})
            try:
                with copy.prepare(p, self.device, 0) as case:
                    self.bytes_per_s = float(copy.counts(p, self.device).bytes or 0) * _rate(case.run, self.device)
            except Exception:
                self.bytes_per_s = None
        return self.bytes_per_s

    def call_s(self, entry: Entry) -> tuple[float | None, str]:
        """(predicted seconds a call, how): the roofline of the probed rates; None without counts."""
        w, p = entry.workload, entry.params
        counts = w.counts(p, self.device)
        dtype = w.peak_dtype(p, self.device) or "fp32"
        parts: list[tuple[float, str]] = []
        if counts.flops:
            rate = self.gemm_flops_per_s(dtype)
            if rate:
                parts.append(
                    (counts.flops / rate, f"{counts.flops / 1e12:.3g} TFLOP at {rate / 1e9:.3g} GFLOP/s {dtype}")
                )
        if counts.bytes:
            bw = self.copy_bytes_per_s()
            if bw:
                parts.append((counts.bytes / bw, f"{counts.bytes / 1e9:.3g} GB at {bw / 1e9:.3g} GB/s"))
        if not parts:
            return None, "no counts to predict from"
        t, how = max(parts)
        return t, f"{how}, as probed"

    def predict(self, entry: Entry) -> Prediction | None:
        """The entry's prediction, with a skip reason where it cannot finish within its timer's limits."""
        call, how = self.call_s(entry)
        if call is None:
            return None
        return judge(call, entry.timer.warmup_s, entry.timer.min_reps, entry.timer.max_time_s,
                     entry.timer.min_time_s, how)  # fmt: skip


def judge(call_s: float, warmup_s: float, min_reps: int, max_time_s: float, min_time_s: float = 0.0,
          how: str = "") -> Prediction:  # fmt: skip
    """A prediction from a call time and the timer's settings (the formulas in the module doc)."""
    warm = max(1.0, warmup_s / call_s) if warmup_s > 0 and call_s > 0 else 0.0
    need = call_s * (1 + warm + min_reps)
    sampling = min(max_time_s, max(min_time_s, min_reps * call_s))
    entry_s = call_s * (1 + warm) + sampling
    limit = warmup_s + max_time_s
    reason = None
    if need > limit:
        reason = (f"predicted {duration(call_s)} a call ({how}): the first call, warm-up and {min_reps} sample"
                  f"{'s' if min_reps != 1 else ''} would take {duration(need)}, over the timer's limit "
                  f"of {duration(limit)} (warmup_s + max_time_s)")  # fmt: skip
    return Prediction(call_s, need, entry_s if math.isfinite(entry_s) else need, reason)


@dataclass(frozen=True)
class Eta:
    """Time left in a run from its entries' predictions (Prediction.entry_s; 0 for one skipped, the
    timer's warmup_s + min_time_s for one without a prediction), scaled by how the run has gone:

        left_s = predicted left x (elapsed / predicted done), once predicted done >= 1 s; else predicted left
    """

    predicted_s: tuple[float, ...]

    @classmethod
    def of(cls, entries: list[Entry], predictions: list[Prediction | None]) -> Eta:
        return cls(tuple(
            (0.0 if p.skip_reason else p.entry_s) if p is not None else e.timer.warmup_s + e.timer.min_time_s
            for e, p in zip(entries, predictions, strict=True)
        ))  # fmt: skip

    def left_s(self, done: int, elapsed_s: float) -> float:
        before, after = math.fsum(self.predicted_s[:done]), math.fsum(self.predicted_s[done:])
        return after * (elapsed_s / before) if before >= 1.0 else after

    def text(self, done: int, elapsed_s: float, entry_started_s: float) -> str:
        """'about 3.2 min left': left_s as the entry in flight began, less the time it has run since."""
        left = self.left_s(done, entry_started_s) - (elapsed_s - entry_started_s)
        if done >= len(self.predicted_s):
            return ""
        left = max(0.0, left)
        return f"about {left:.0f} s left" if left < 120 else f"about {duration(left)} left"
