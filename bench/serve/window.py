"""One load point in its window: the load, the energy over it on the serving GPUs, and its record.

`PointRunner` runs a load point (bench.serve.load) inside the energy window, summarises it
(bench.serve.metrics), writes its requests and record (bench.serve.records) and returns the record;
the command and the sweeps call it once per point.

Where NVML sees GPUs on the client's node (the server runs there too), each GPU in the window (see
`pick_gpus`: --energy-gpus, else every visible GPU when that is the --num-gpus serving) gets a Sampler
(bench.device.telemetry) started when the load starts (after any client worker processes are up, just
before the first request is due) and stopped just after its last one finishes; bench.device.energy
turns each window into joules (the card's energy counter, else integrated power). The load point's
energy is the sum over GPUs, and only when every GPU gave a figure: a partial sum would read as a
lower J/token. Elsewhere the fields are null with the reason.

  energy_j          = sum over GPUs of each window's energy
  power_mean_w      = energy_j / energy_window_s
  energy_window_s   = the longest of the GPUs' windows (they open and close within milliseconds)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from bench.device import nvml
from bench.device import telemetry as tm
from bench.device.energy import energy_fields
from bench.results.writer import utc_now
from bench.serve.client import Endpoint
from bench.serve.load import run_load_point
from bench.serve.metrics import summarize
from bench.serve.model import LoadPointStats, LoadSpec, RequestSpec, Slo
from bench.serve.records import PointContext, ServeFiles, point_record

# Power samples every 0.1 s (not run's 0.02 s): a load point lasts seconds to minutes, the energy comes from the
# counter where the GPU has one, and one sampler thread per GPU must not slow the client's event loop.
SERVE_INTERVAL_S = 0.1


def visible_gpus(min_window_s: float = tm.DEFAULT_MIN_WINDOW_S) -> tuple[list[tm.Telemetry], str | None]:
    """A telemetry source per GPU NVML sees on this node, or ([], why none)."""
    why = nvml.init_error()
    if why:
        return [], why
    P = nvml.pynvml
    count, why = nvml._call(P.nvmlDeviceGetCount, what="GPU count")
    if why or not count:
        return [], why or "NVML sees no GPU on this node"
    sources: list[tm.Telemetry] = []
    for i in range(int(count)):
        handle, why = nvml._call(P.nvmlDeviceGetHandleByIndex, i, what=f"GPU {i}")
        if handle is None:
            return [], why or f"NVML gives no handle for GPU {i}"
        sources.append(tm.NvmlTelemetry(handle, min_window_s=min_window_s))
    return sources, None


def pick_gpus(visible: int, energy_gpus: list[int] | None, num_gpus: int | None) -> tuple[list[int], str | None]:
    """The NVML indices whose energy a load point sums, or ([], why none). --energy-gpus wins (each must be
    visible: ValueError naming the flag); without it, every visible GPU, but only when --num-gpus is absent
    or equals the visible count: otherwise idle GPUs would enter (or serving ones miss) the J/token."""
    if energy_gpus is not None:
        bad = [i for i in energy_gpus if not 0 <= i < visible]
        if bad:
            raise ValueError(f"--energy-gpus: GPU {bad[0]} is not among the {visible} GPUs NVML sees")
        return sorted(set(energy_gpus)), None
    if num_gpus is not None and num_gpus != visible:
        return [], (f"--num-gpus {num_gpus} differs from the {visible} GPUs NVML sees: give --energy-gpus "
                    "with the serving GPUs' indices")  # fmt: skip
    return list(range(visible)), None


def parse_gpu_list(text: str | None) -> list[int] | None:
    """--energy-gpus '0,1' -> [0, 1]; ValueError naming the flag when it is not a list of indices."""
    if text is None:
        return None
    try:
        out = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--energy-gpus {text!r}: give NVML indices separated by commas, e.g. 0,1") from None
    if not out or any(i < 0 for i in out):
        raise ValueError(f"--energy-gpus {text!r}: give NVML indices (>= 0) separated by commas, e.g. 0,1")
    return out


def null_energy(reason: str) -> dict[str, Any]:
    """The energy fields of a load point whose energy was not measured, with why."""
    return {"telemetry_source": "none", "energy_j": None, "energy_source": None, "energy_reason": reason,
            "energy_window_s": None, "power_mean_w": None, "energy_gpus": None}  # fmt: skip


@dataclass
class LoadWindow:
    """Samplers over every GPU for one load point: start() before the load, stop() after it."""

    sources: list[tm.Telemetry]
    reason: str | None = None  # why there are no sources
    interval_s: float = SERVE_INTERVAL_S
    clock: Callable[[], float] | None = None  # tests give a scripted clock
    _samplers: list[tm.Sampler] = field(default_factory=list)
    _started: bool = False

    def start(self) -> None:
        self._started = True
        clock = self.clock or time.perf_counter
        self._samplers = [tm.Sampler(t, self.interval_s, clock=clock) for t in self.sources if t.active]
        for s in self._samplers:
            s.start()

    def stop(self) -> dict[str, Any]:
        """Close every window and return the load point's energy fields."""
        windows = [s.stop() for s in self._samplers]
        started, self._samplers, self._started = self._started, [], False
        if not started and self.sources:
            return null_energy("the load never started (stopped while the client processes were starting)")
        return sum_windows(windows, self.reason or "no GPU on this node has energy or power readings")


def sum_windows(windows: list[tm.Window], reason: str) -> dict[str, Any]:
    """The load point's energy from one window per GPU (see the module's formulas)."""
    if not windows:
        return null_energy(reason)
    per_gpu = [energy_fields(w) for w in windows]
    missing = [f"GPU {i}: {f['energy_reason']}" for i, f in enumerate(per_gpu) if f["energy_j"] is None]
    seconds = max(w.duration_s for w in windows)
    if missing:
        out = null_energy("; ".join(missing))
        return {**out, "telemetry_source": windows[0].source, "energy_window_s": seconds}
    joules = sum(f["energy_j"] for f in per_gpu)
    sources = sorted({str(f["energy_source"]) for f in per_gpu})
    return {
        "telemetry_source": windows[0].source,
        "power_reading": windows[0].power_reading,
        "energy_j": joules,
        "energy_source": sources[0] if len(sources) == 1 else "+".join(sources),
        "energy_reason": None,
        "energy_window_s": seconds,
        "power_mean_w": joules / seconds if seconds > 0 else None,
        "energy_gpus": len(windows),
    }


def points_processes(asked: int, max_concurrency: int | None) -> int:
    """Client processes for one point: --client-processes, but no more than the point's concurrency cap
    (each process needs a slot of it); recorded as `client_processes`."""
    return asked if max_concurrency is None else max(1, min(asked, max_concurrency))


@dataclass
class PointRunner:
    """Runs one load point per call: load and energy window, statistics, requests and record on disk."""

    endpoint: Endpoint
    requests: list[RequestSpec]
    files: ServeFiles
    context: PointContext  # seq is set per point
    energy: LoadWindow
    stop: threading.Event
    percentiles: tuple[float, ...] = (90.0, 99.0)
    slo: Slo | None = None
    request_timeout_s: float = 600.0
    processes: int = 1
    on_point: Callable[[dict[str, Any], LoadPointStats], None] = lambda record, stats: None

    def __call__(self, spec: LoadSpec) -> dict[str, Any]:
        seq = len(self.files.records)
        started = utc_now()
        log = self.files.log
        procs = points_processes(self.processes, spec.max_concurrency)
        try:
            run = run_load_point(self.endpoint, self.requests[: spec.num_prompts], spec,
                                 request_timeout_s=self.request_timeout_s, stop=self.stop,
                                 on_result=lambda r: log.append(seq, r), processes=procs,
                                 on_start=self.energy.start)  # fmt: skip
        finally:
            energy = self.energy.stop()
        stats = summarize(run, spec, percentiles=self.percentiles, slo=self.slo)
        ctx = replace(self.context, seq=seq, seed=spec.seed, extra={**self.context.extra, "client_processes": procs})
        record = point_record(stats, run.results, ctx, started_at=run.started_at or started, energy=energy,
                              interrupted=run.interrupted)  # fmt: skip
        self.files.add(record)
        self.on_point(record, stats)
        return record
