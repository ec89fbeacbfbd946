"""The runner: for each entry, check it can run, set up, warm up, time, check, write a record.

Telemetry rides along: a Sampler window around the timed calls gives the record its energy, power
and card behaviour, and the card's health counters are read before and after each measurement.

Nothing here prints. Every entry ends as exactly one record, written at once: `ok`, `skipped`
(cannot run here: dtype unsupported, too little memory) or `failed` (an exception, an OOM, a
wrong answer). A KeyboardInterrupt ends the run with every finished record on disk.

`run` measures every entry in the calling thread (the main thread under `tokenbench run`): a
second thread would start a second OpenMP team that competes with the first for the cores, and a
GPU's current device, CUDA graphs and compiled code belong to the thread that set them up. How a
signal ends a run during a call of minutes is bench/measure/stopping.py's: it `stop`s the runner,
so the interrupted entry's record is dropped, never written half-made.

Before an entry is set up, the run's `Predictor` (bench/measure/predict.py) may skip it: a call
predicted so long that the timer's minimum cannot finish within its limits. Each timed window
also reads the host (bench/measure/host.py): the record says whether other work shared its CPUs.
"""

from __future__ import annotations

import contextlib
import gc
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from bench.catalog import gpus
from bench.device import rapl as host
from bench.device.base import Device
from bench.device.energy import window_fields
from bench.device.telemetry import DEFAULT_INTERVAL_S, NullTelemetry, Sampler, Telemetry, Window, health_change
from bench.measure.host import HostWindow
from bench.measure.predict import Predictor
from bench.measure.ranks import Dist
from bench.measure.suites import Entry
from bench.measure.timing import Timing, measure
from bench.results.schema import SCHEMA_VERSION
from bench.results.writer import RecordSink, utc_now
from workloads.base import CheckResult, Counts, case_extra

# Leave this share of free memory unclaimed: allocators fragment and the check needs slack.
MEM_HEADROOM = 0.90


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def one_line(exc: BaseException) -> str:
    """`Type: first line of the message`, so a record's reason stays a single line."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def rates(counts: Counts, median_s: float) -> dict[str, float | None]:
    """Rates on the median time: TFLOP/s, GB/s (decimal) and tokens/s."""

    def per_s(x: float | None, scale: float) -> float | None:
        return x / median_s / scale if x is not None and median_s > 0 else None

    return {
        "tflops": per_s(counts.flops, 1e12),
        "gb_per_s": per_s(counts.bytes, 1e9),
        "tokens_per_s": per_s(counts.tokens, 1.0),
    }


def device_peaks(device_name: str, dtype: str | None) -> dict[str, float | None]:
    """The device's dense peak FLOP/s for `dtype` and peak bytes/s; None where unknown."""
    spec, _ = gpus.catalog_spec(device_name)
    return {
        "flops": gpus.peak_flops(spec, dtype) if spec and dtype else None,
        "bytes_per_s": gpus.peak_bandwidth_bytes_per_s(spec),
    }


def peak_fields(device_name: str, dtype: str | None, tflops: float | None, gb_per_s: float | None) -> dict[str, Any]:
    """Fractions of the vendor's dense peak, or nulls with the reason they are unknown."""
    spec, why = gpus.catalog_spec(device_name)
    peaks = device_peaks(device_name, dtype)
    peak_flops, peak_bw = peaks["flops"], peaks["bytes_per_s"]
    if spec and dtype and peak_flops is None:
        why = f"catalog has no {dtype} peak for {spec.id}"
    source = None
    if spec:
        source = f"{spec.source} ({spec.source_date}) {spec.source_url}"
        source += " [weak: estimate, see the catalog note]" if spec.weak else ""
    return {
        "peak_gpu_id": spec.id if spec else None,
        "peak_tflops": peak_flops / 1e12 if peak_flops else None,
        "peak_gb_per_s": peak_bw / 1e9 if peak_bw else None,
        "frac_peak_flops": tflops * 1e12 / peak_flops if tflops is not None and peak_flops else None,
        "frac_peak_bw": gb_per_s * 1e9 / peak_bw if gb_per_s is not None and peak_bw else None,
        "peak_source": source,
        "peak_reason": why,
    }


def timing_fields(t: Timing, cv_threshold: float) -> dict[str, Any]:
    s = t.summary
    return {
        "timer": t.timer,
        "l2_flushed": t.l2_flushed,
        "first_call_s": t.first_call_s,
        "warmup_s": t.warmup_s,
        "warmup_reps": t.warmup_reps,
        "sampling_wall_s": t.sampling_wall_s,
        **s.record_fields(t.samples_s),
        "cv_threshold": cv_threshold,
        "unstable": t.unstable,
    }


def check_fields(c: CheckResult) -> dict[str, Any]:
    return {"check_passed": c.passed, "check_error": c.error, "check_tolerance": c.tolerance, "check_detail": c.detail,
            **c.fields}  # fmt: skip


@dataclass
class Runner:
    """Runs entries on one device and hands each record to the writer as it is made."""

    device: Device
    writer: RecordSink
    env: dict[str, Any]
    seed: int = 0
    telemetry: Telemetry = field(default_factory=lambda: NullTelemetry("no telemetry source was given to the runner"))
    sample_interval_s: float = DEFAULT_INTERVAL_S
    host_energy: host.HostEnergy | None = None
    idle_power_w: float | None = None  # the run's idle baseline, for energy above idle
    on_window: Callable[[int, Window], None] | None = None  # e.g. keep the raw sample timeline
    on_start: Callable[[int, Entry], None] | None = None
    on_record: Callable[[dict[str, Any]], None] | None = None
    on_failure: Callable[[dict[str, Any]], None] | None = None  # at once, before any other rank is waited for
    dist: Dist | None = None  # set when this process is one rank of a torchrun job
    measure: Callable[..., Timing] = measure  # how the timed calls are made (pytest-benchmark's in the plugin)
    predictor: Predictor | None = None  # skip entries predicted too long for their timer (None: never)
    records: list[dict[str, Any]] = field(default_factory=list)
    stopped: bool = False  # set by `stop`: a record made after it is not written
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _base(self, seq: int, entry: Entry) -> dict[str, Any]:
        w, p = entry.workload, entry.params
        env = self.env
        return {
            "schema_version": SCHEMA_VERSION,
            "run_id": self.writer.run_id,
            "seq": seq,
            "workload": w.id,
            "workload_version": w.version,
            "family": w.family,
            "label": w.label(p),
            **{f"param_{k}": v for k, v in p.model_dump().items()},
            "status": "ok",
            "reason": None,
            "seed": self.seed + seq,
            "started_at": utc_now(),
            "finished_at": None,
            "hostname": env.get("hostname"),
            "device": str(self.device.torch_device),
            "device_kind": self.device.kind,
            "device_name": self.device.name,
            "gpu_index": env.get("gpu_index"),
            "gpu_uuid": env.get("gpu_uuid"),
            "tokenbench_version": env.get("tokenbench_version"),
            "torch_version": env.get("torch_version"),
            "cuda_version": env.get("cuda_version"),
            "driver_version": env.get("driver_version"),
            **(self.dist.fields() if self.dist else {}),
            **dict(entry.tags),
        }

    def _measure(self, entry: Entry, record: dict[str, Any]) -> None:
        w, p, dev = entry.workload, entry.params, self.device
        counts = w.counts(p, dev)
        record.update({"flops": counts.flops, "bytes": counts.bytes, "tokens": counts.tokens})
        record.update(w.record_fields(p, dev))
        reason = w.unsupported_reason(p, dev)
        if reason is None:
            need, free = w.memory_bytes(p, dev), dev.mem_free_bytes()
            record.update(mem_required_bytes=need, mem_free_bytes=free)
            if need > free * MEM_HEADROOM:
                reason = (f"needs about {_gib(need)} of memory; {_gib(free)} free on {dev.torch_device} "
                          f"(fits up to {MEM_HEADROOM:.0%} of free)")  # fmt: skip
        if reason is None and self.predictor is not None:
            predicted = self.predictor.predict(entry)
            if predicted is not None:
                record["predicted_call_s"] = predicted.call_s
                reason = predicted.skip_reason
        peers = self.dist if self.dist is not None and w.lockstep(p) else None  # ranks in lockstep, if any
        lockstep = peers is not None
        if peers is not None and not peers.all_ok(reason is None) and reason is None:
            reason = "another rank cannot run it (see that rank's record): every rank must take part"
        if reason:
            record.update(status="skipped", reason=reason)
            return
        dev.reset_peak_memory()
        sampler = Sampler(self.telemetry, self.sample_interval_s, host=self.host_energy)
        window = HostWindow(sampler, on_cpu=dev.kind == "cpu")
        timer = entry.timer.model_copy(update={"flush_l2": False}) if lockstep else entry.timer
        agree = peers.agree_max if peers is not None else None
        with contextlib.ExitStack() as stack:
            try:
                case, failed = stack.enter_context(w.prepare(p, dev, record["seed"])), None
            except Exception as e:  # an OOM while allocating, most often
                case, failed = None, e
            # Ranks in lockstep agree that all are set up before the first collective: one rank's
            # failure then fails the entry on every rank instead of leaving the others waiting.
            if peers is not None and not peers.all_ok(failed is None) and failed is None:
                raise RuntimeError("another rank could not set this entry up (see that rank's record)")
            if failed is not None:
                raise failed
            assert case is not None
            timing = self.measure(case.run, dev, timer, working_set_bytes=counts.bytes, window=window, agree=agree)
            record.update(case_extra(case, timing, device_peaks(dev.name, w.peak_dtype(p, dev))))
            check = case.check()
            record["kernel"] = getattr(case, "kernel", None)
        record.update(timing_fields(timing, entry.timer.cv_threshold))
        record.update(window.fields())
        record.update(rates(counts, timing.summary.median))
        record.update(peak_fields(dev.name, w.peak_dtype(p, dev), record["tflops"], record["gb_per_s"]))
        record.update(check_fields(check))
        record["mem_alloc_peak_bytes"] = dev.mem_alloc_peak_bytes()
        record["rss_peak_bytes"] = host.rss_peak_bytes()
        self._telemetry_fields(record, sampler, timing, counts)
        if not check.passed:
            record.update(
                status="failed",
                reason=f"output check failed: error {check.error:.3g} > "
                f"tolerance {check.tolerance:.3g} ({check.detail})",
            )

    def _telemetry_fields(self, record: dict[str, Any], sampler: Sampler, timing: Timing, counts: Counts) -> None:
        """The window's energy and behaviour; a telemetry error nulls them, never the measurement."""
        try:
            assert sampler.window is not None  # measure() closed it
            record.update(
                window_fields(
                    sampler.window,
                    timing.window_calls,
                    math.fsum(timing.samples_s),
                    counts.flops,
                    counts.tokens,
                    self.idle_power_w,
                    host_is_device=self.device.kind == "cpu",
                )
            )
            if self.on_window:
                self.on_window(record["seq"], sampler.window)
        except Exception as e:  # a bug or an I/O error here must not lose what was measured
            record.update(energy_j=None, energy_source=None, energy_reason=f"telemetry error: {one_line(e)}")

    def _health(self, record: dict[str, Any], before: dict[str, Any]) -> None:
        """A memory fault the card could not correct during the measurement fails the record."""
        level, detail = health_change(before, self.telemetry.health()) if before else (None, None)
        record.update(health_change=level, health_detail=detail)
        if level == "fail":
            why = f"card health: {detail} during this measurement"
            record.update(status="failed", reason=why if record["status"] != "failed" else f"{record['reason']}; {why}")

    def run_entry(self, seq: int, entry: Entry) -> dict[str, Any]:
        """Measure one entry; always returns (and writes) exactly one record."""
        if self.on_start:
            self.on_start(seq, entry)
        if self.dist:  # every GPU starts each entry together: siblings measured under the same load
            self.dist.barrier()
        record = self._base(seq, entry)
        health_before = self.telemetry.health()
        try:
            self._measure(entry, record)
        except torch.OutOfMemoryError as e:
            record.update(status="failed", reason=f"out of memory: {one_line(e)}")
        except Exception as e:
            record.update(status="failed", reason=one_line(e))
        finally:
            if record["status"] == "failed" and self.on_failure:
                self.on_failure(record)
            gc.collect()
            if self.device.kind == "cuda":
                torch.cuda.empty_cache()
        if record["status"] != "skipped":  # a fault often surfaces as the workload's exception
            self._health(record, health_before)
        record["finished_at"] = utc_now()
        with self._lock:
            if self.stopped:  # the run ended while this entry was measured: nothing half-made is written
                return record
            self.writer.append(record)
            self.records.append(record)
        if self.on_record:
            self.on_record(record)
        return record

    def run(self, entries: list[Entry]) -> list[dict[str, Any]]:
        """Run every entry in order, in this thread; the caller finishes the writer (also on interrupt)."""
        for seq, entry in enumerate(entries):
            self.run_entry(seq, entry)
        return self.records

    def stop(self) -> None:
        """No record is written from now on (the entry in flight, if any, is abandoned)."""
        with self._lock:
            self.stopped = True
