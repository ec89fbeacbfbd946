"""The timer: time-based warm-up, then per-call samples synchronised at both edges.

On a GPU each call sits between two CUDA events on the device's stream, the L2 cache is
overwritten before every call (outside the events) where the working set could fit in it, and
the host syncs only once per chunk of calls, after queueing a short GPU spin so that its own
launch latency lands before the first sample rather than inside it. On the CPU each call is bracketed by perf_counter.
Sampling stops once the samples add up to `min_time_s` and there are at least `min_reps` of
them, or at `max_reps`, or when `max_time_s` of wall time has passed.

A telemetry window (bench.device.telemetry.Sampler) opens right after the warm-up's last sync and closes
right after the sampling's last sync, so energy covers exactly the timed calls. Where that is
shorter than the window the energy readings need (`min_window_s`), sampling goes on with more of
the same calls until it is long enough: timed and kept up to `max_reps`, then run but not kept.
`Timing.window_calls` counts every call inside the window.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from bench.device.base import Device
from bench.measure.stats import DEFAULT_CV_THRESHOLD, Summary, is_unstable, summarize

# A chunk of GPU calls aims at this much device time between host syncs.
_CHUNK_TARGET_S = 0.05
_MAX_CHUNK = 1000
# About 0.5-1 ms of GPU spinning at 1-2 GHz, queued before each chunk of timed calls.
_HEAD_START_CYCLES = 1_000_000
# Flush the L2 only where the working set could live in it (DESIGN: measurement rules); a far
# larger working set evicts itself, and a flush would only add write-backs to the next call.
_FLUSH_IF_WORKING_SET_UNDER_L2_TIMES = 2
# Bounds on a timer, so that no setting can make an entry run for ever: an hour of warm-up or of
# sampling is far beyond any suite's (the soak's intervals are seconds), and 10^7 samples are
# about 200 MB of record, still readable under the reader's 256 MiB per file.
MAX_TIME_S = 3600.0
MAX_REPS = 10_000_000


class TimerConfig(BaseModel):
    """How long to warm up and how much to sample; suites set these per suite."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    warmup_s: float = Field(0.5, ge=0, le=MAX_TIME_S, description="warm up for at least this long (wall time)")
    min_time_s: float = Field(1.0, ge=0, le=MAX_TIME_S, description="sample until the samples add up to this")
    min_reps: int = Field(10, ge=1, le=MAX_REPS, description="and until there are at least this many samples")
    max_reps: int = Field(10_000, ge=1, le=MAX_REPS, description="stop at this many samples")
    max_time_s: float = Field(30.0, gt=0, le=MAX_TIME_S, description="stop sampling after this much wall time")
    cv_threshold: float = Field(DEFAULT_CV_THRESHOLD, gt=0, description="flag CV above this")
    flush_l2: bool = Field(True, description="overwrite the GPU L2 cache before each timed call")

    @field_validator("warmup_s", "min_time_s", "min_reps", "max_reps", "max_time_s", "cv_threshold", mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, value: Any) -> Any:
        if isinstance(value, bool):  # TOML's `min_reps = true` is not 1
            raise PydanticCustomError("number_not_bool", "Input should be a number, not true or false")
        return value

    @model_validator(mode="after")
    def _reps_ordered(self) -> TimerConfig:
        if self.min_reps > self.max_reps:
            raise ValueError(f"min_reps ({self.min_reps}) exceeds max_reps ({self.max_reps})")
        return self


@dataclass
class Timing:
    """Every sample kept, its summary, and what happened before the timed window."""

    samples_s: list[float]
    summary: Summary
    unstable: bool
    first_call_s: float
    warmup_s: float
    warmup_reps: int
    sampling_wall_s: float
    timer: str
    l2_flushed: bool
    window_calls: int  # calls inside the telemetry window: the kept samples and any beyond max_reps

    @classmethod
    def of(cls, samples: list[float], cv_threshold: float, min_reps: int = 1, **fields: Any) -> Timing:
        """The samples with their summary and stability flag, and the other fields as given. Unstable
        too when the timer stopped at its time limit with fewer than `min_reps` samples (calls slower
        than predicted): the median of a handful of calls is no figure to trust."""
        summary = summarize(samples)
        unstable = is_unstable(summary, cv_threshold) or len(samples) < min_reps
        return cls(samples_s=samples, summary=summary, unstable=unstable, **fields)


class WindowSampler(Protocol):
    """What the timer needs from a telemetry sampler (bench.device.telemetry.Sampler): it opens and
    closes the window around the timed calls, and says the shortest window its readings need."""

    @property
    def min_window_s(self) -> float: ...

    def start(self) -> None: ...

    def stop(self) -> object: ...


def _chunk_cuda(fn: Callable[[], object], device: Device, reps: int, flush: bool) -> list[float]:
    stream = device.stream()
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    if hasattr(torch.cuda, "_sleep"):
        # After the last chunk's sync the GPU is idle: give it a head start of busy cycles so the
        # host's launch latency for the first calls is absorbed here, not inside a sample.
        torch.cuda._sleep(_HEAD_START_CYCLES)
    for start, end in zip(starts, ends, strict=True):
        if flush:
            device.flush_l2()  # queued ahead of the call and outside its events
        start.record(stream)
        fn()
        end.record(stream)
    device.synchronize()
    return [s.elapsed_time(e) / 1e3 for s, e in zip(starts, ends, strict=True)]


def _chunk_host(fn: Callable[[], object], device: Device, reps: int, flush: bool) -> list[float]:
    samples = []
    for _ in range(reps):
        if flush:
            device.flush_l2()
        device.synchronize()
        t0 = time.perf_counter()
        fn()
        device.synchronize()
        samples.append(time.perf_counter() - t0)
    return samples


def wants_flush(device: Device, cfg: TimerConfig, working_set_bytes: float | None) -> bool:
    """Flush when asked, possible, and the working set (None: unknown) could sit in the L2."""
    if not (cfg.flush_l2 and device.l2_flush):
        return False
    limit = _FLUSH_IF_WORKING_SET_UNDER_L2_TIMES * device.l2_cache_bytes
    return working_set_bytes is None or working_set_bytes <= limit


def first_call_and_warm_up(
    fn: Callable[[], object], device: Device, warmup_s: float, flush: bool = False,
    agree: Callable[[int], int] | None = None,
) -> tuple[float, int, float]:  # fmt: skip
    """(time of the first call, warm-up calls, warm-up seconds): the calls before any timed one.

    The first call pays for lazy init and autotuning, so it is reported on its own. The warm-up
    repeats the call, synchronised, until `warmup_s` has passed (on every rank, with `agree`).
    """
    agree = agree or (lambda n: n)
    device.synchronize()
    t0 = time.perf_counter()
    fn()
    device.synchronize()
    first_call_s = time.perf_counter() - t0
    reps, start = 0, time.perf_counter()
    while agree(int(time.perf_counter() - start < warmup_s)):
        if flush:
            device.flush_l2()
        fn()
        device.synchronize()
        reps += 1
    return first_call_s, reps, time.perf_counter() - start


def measure(
    fn: Callable[[], object],
    device: Device,
    cfg: TimerConfig,
    working_set_bytes: float | None = None,
    window: WindowSampler | None = None,
    agree: Callable[[int], int] | None = None,
) -> Timing:
    """Time `fn` on `device` under `cfg`; returns all samples and their summary.

    `working_set_bytes` (the bytes one call touches) decides whether the L2 flush is worth it.
    `window`, where given, is opened and closed around the sampling (see the module doc).
    `agree`, for calls that every rank must make together (collectives), turns each rank's wish
    (how many calls next; 0: stop) into the one every rank follows: the largest. So all ranks
    make the same calls, and none stops while another still needs samples.
    """
    agree = agree or (lambda n: n)
    on_gpu = device.kind == "cuda"
    flush = wants_flush(device, cfg, working_set_bytes)
    chunk = _chunk_cuda if on_gpu else _chunk_host
    first_call_s, warm_reps, warmup_s = first_call_and_warm_up(fn, device, cfg.warmup_s, flush, agree)
    per_call_s = warmup_s / warm_reps if warm_reps else first_call_s

    def chunk_size(wanted: int, room: int, left_s: float) -> int:
        if not on_gpu:
            return 1  # on the host each call is its own chunk, so max_time_s is honoured
        want = max(wanted, int(_CHUNK_TARGET_S / max(per_call_s, 1e-9)))
        return max(1, min(want, _MAX_CHUNK, room, int(left_s / max(per_call_s, 1e-9))))

    samples: list[float] = []
    unkept = 0
    if window is not None:
        window.start()
    sample_start = time.perf_counter()
    try:
        while True:
            total = math.fsum(samples)
            left_s = cfg.max_time_s - (time.perf_counter() - sample_start)
            done = (
                len(samples) >= cfg.max_reps
                or (len(samples) >= cfg.min_reps and total >= cfg.min_time_s)
                or (samples and left_s <= 0)
            )
            reps = 0 if done else chunk_size(cfg.min_reps - len(samples), cfg.max_reps - len(samples), left_s)
            reps = agree(reps)
            if reps == 0:
                break
            samples.extend(chunk(fn, device, reps, flush))
        # Lengthen a window too short for the energy readings with more of the same calls.
        min_window_s = window.min_window_s if window is not None else 0.0
        while True:
            short_s = min_window_s - (time.perf_counter() - sample_start)
            room = cfg.max_reps - len(samples)
            reps = agree(chunk_size(1, room if room > 0 else _MAX_CHUNK, short_s) if short_s > 0 else 0)
            if reps == 0:
                break
            got = chunk(fn, device, reps, flush)
            if room > 0:
                samples.extend(got)
            else:
                unkept += len(got)
    finally:
        if window is not None:
            window.stop()
    return Timing.of(
        samples,
        cfg.cv_threshold,
        min_reps=cfg.min_reps,
        first_call_s=first_call_s,
        warmup_s=warmup_s,
        warmup_reps=warm_reps,
        sampling_wall_s=time.perf_counter() - sample_start,
        timer="cuda_event" if on_gpu else "perf_counter",
        l2_flushed=flush,
        window_calls=len(samples) + unkept,
    )
