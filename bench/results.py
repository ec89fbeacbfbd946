"""Results on disk: one JSONL record per measurement, flushed at once, and a run header.

`<out>/<run-id>.jsonl` gets a line the moment a workload finishes; `<out>/<run-id>.json` is the
run header, written atomically at the start (state "running") and again at the end ("complete",
"interrupted" or "crashed"). A header still saying "running" means the process died mid-run.
`load()` reads results back as data only (json, never pickle or eval) into a DataFrame.
"""

from __future__ import annotations

import csv
import json
import math
import os
import secrets
import socket
import tempfile
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

SCHEMA_VERSION = 1
STATUSES = ("ok", "skipped", "failed")

# Every field of a record, documented; results/README.md mirrors this table (a test checks it).
FIELDS: dict[str, str] = {
    "schema_version": "record schema version (this is 1)",
    "run_id": "the run this record belongs to (also the file name)",
    "seq": "position of the measurement in the run, from 0",
    "workload": "stable workload id (gemm, copy, attention, ...)",
    "workload_version": "bumped when what the workload measures changes; compare like with like",
    "family": "workload family: gemm, memory, attention, ...",
    "label": "short human-readable configuration, e.g. '8192x8192x8192 bf16'",
    "param_*": "one field per workload parameter, e.g. param_m, param_dtype",
    "status": "ok | skipped | failed",
    "reason": "why the record is skipped or failed (null when ok)",
    "seed": "seed of this measurement's random inputs (the run's seed + seq); rerun with it to repeat them",
    "started_at": "UTC ISO 8601 time the measurement began",
    "finished_at": "UTC ISO 8601 time the record was written",
    "hostname": "machine name",
    "device": "torch device, e.g. cuda:0 or cpu",
    "device_kind": "cuda | cpu",
    "device_name": "GPU or CPU model as reported by torch or /proc/cpuinfo",
    "gpu_index": "torch index of the GPU (null on CPU)",
    "gpu_uuid": "GPU UUID from torch/NVML (null on CPU)",
    "tokenbench_version": "tokenbench version that measured",
    "torch_version": "torch version",
    "cuda_version": "CUDA version torch was built with (null on CPU builds)",
    "driver_version": "NVIDIA driver version from NVML (null where NVML is absent)",
    "timer": "cuda_event (events on the stream) | perf_counter (host clock, synced)",
    "l2_flushed": "true when the GPU L2 was overwritten before every timed call (only where the working set "
    "is at most twice the L2 size; larger ones evict themselves)",
    "first_call_s": "time of the first call (lazy init, autotuning), excluded from samples",
    "warmup_s": "wall time spent warming up before sampling",
    "warmup_reps": "calls made during warm-up",
    "sampling_wall_s": "wall time spent sampling",
    "n_samples": "number of timed calls kept",
    "samples_s": "every timed call's duration, seconds, in order",
    "time_median_s": "median of samples_s; every rate below is computed from it",
    "time_mean_s": "mean of samples_s",
    "time_p5_s": "5th percentile of samples_s (linear interpolation)",
    "time_p95_s": "95th percentile of samples_s",
    "time_min_s": "fastest sample",
    "time_max_s": "slowest sample",
    "time_stdev_s": "sample standard deviation (n-1) of samples_s; null when n = 1",
    "time_cv": "coefficient of variation, time_stdev_s / time_mean_s",
    "cv_threshold": "CV above which the record is flagged unstable",
    "unstable": "true when time_cv > cv_threshold (or cannot be computed): do not trust the median",
    "flops": "analytic floating-point operations of one call (null where not meaningful)",
    "bytes": "analytic bytes one call must move to or from device memory",
    "tokens": "tokens processed by one call (null for kernels without tokens)",
    "tflops": "flops / time_median_s / 1e12",
    "gb_per_s": "bytes / time_median_s / 1e9",
    "tokens_per_s": "tokens / time_median_s",
    "peak_gpu_id": "catalog entry the device matched (null when unknown)",
    "peak_tflops": "vendor dense peak for the record's dtype, TFLOP/s (null when unknown)",
    "peak_gb_per_s": "vendor peak memory bandwidth, GB/s (null when unknown)",
    "frac_peak_flops": "tflops / peak_tflops (null when the peak is unknown, never a guess)",
    "frac_peak_bw": "gb_per_s / peak_gb_per_s (null when the peak is unknown)",
    "peak_source": "citation of the peak figures",
    "peak_reason": "why the fractions of peak are null",
    "model_preset": "LLM workloads: the model shape (tiny, llama-3.2-1b, llama-3.1-8b, llama-3.1-70b)",
    "model_layers": "layers that ran (fewer than model_layers_full when the record says so)",
    "model_layers_full": "layers of the real model the preset is shaped after",
    "model_params": "parameters of the model as run",
    "model_matmul_params": "parameters that take part in a matmul per token (all but norms and the input embedding)",
    "compute_dtype": "dtype the model computed in (bf16 autocast for training on a GPU)",
    "flops_per_token": "model FLOPs per token (PaLM appendix B; causal attention pairs counted once)",
    "mfu": "model FLOPs utilisation: flops_per_token x tokens/s / dense peak of compute_dtype (null: peak unknown)",
    "compile_s": "LLM workloads with compile=true: the first call, which compiles (never inside the samples)",
    "loss": "train: cross-entropy of the last timed step; the batch is the same every step, so it falls as the "
    "model memorises it: a finiteness check, not a quality figure",
    "output_tokens_per_s": "decode: B x new tokens / median end-to-end time of a batch",
    "per_user_tokens_per_s": "decode: 1 / median TPOT, the interactivity one user sees",
    "ttft_median_s": "decode: time to first token (prefill and the first greedy choice); also _p90_s, _p99_s",
    "tpot_median_s": "decode: time per output token after the first, (e2e - TTFT) / (M - 1); also _p90_s, _p99_s",
    "itl_median_s": "decode: gaps between consecutive tokens, pooled over calls; also _p90_s, _p99_s",
    "e2e_median_s": "decode: start of a batch to its last token; also _p90_s, _p99_s",
    "decode_step_bytes": "decode: bytes a step must move: every weight once plus the KV cache at the mean context",
    "mbu": "decode: model bandwidth utilisation, decode_step_bytes / median TPOT / peak bandwidth (null: unknown)",
    "kernel": "the implementation that ran, where the workload can tell (e.g. sdpa:flash_attention)",
    "check_passed": "true when the output matched the reference within tolerance",
    "check_error": "the check's error measure (see check_detail); null when not finite",
    "check_tolerance": "largest error that passes",
    "check_detail": "what check_error measures and against which reference",
    "mem_required_bytes": "tokenbench's estimate of device memory the measurement needs",
    "mem_free_bytes": "device memory free before the measurement",
    "mem_alloc_peak_bytes": "peak bytes held by torch's CUDA allocator during it (null on CPU)",
    "rss_peak_bytes": "this process's peak resident memory so far (a high-water mark since it started, not per window)",
    "telemetry_source": "nvml (the GPU's readings) | none (no GPU telemetry: see energy_reason)",
    "power_reading": "which NVML power value the samples hold: instant, or nvmlDeviceGetPowerUsage (a 1 s average "
    "on Ampere and newer except A100)",
    "telemetry_interval_s": "seconds between telemetry samples (null without telemetry)",
    "energy_window_s": "length of the telemetry window: from the first timed call's start to the last one's end, "
    "lengthened with more calls to at least the source's minimum (1 s with NVML)",
    "energy_window_calls": "calls of the timed function inside the window (n_samples, plus any run beyond max_reps "
    "to lengthen it)",
    "energy_timed_share": "sum of the timed calls' times / energy_window_s; the rest of the window is the L2 flush "
    "(where l2_flushed), the GPU spin before each chunk and host syncs, whose energy the per-unit figures include",
    "energy_j": "device energy over the window, joules; null with energy_reason when not measured (never 0, never TDP)",
    "energy_source": "nvml_energy_counter (total-energy counter, end - start) | nvml_power_integrated (power samples, "
    "trapezoid rule, edges interpolated; used only where the counter is missing or did not advance) | rapl (CPU "
    "package counters, when the device is the CPU)",
    "energy_reason": "why energy_j is null",
    "energy_counter_j": "energy from the NVML total-energy counter (null: none, or it did not advance)",
    "energy_integrated_j": "energy from the power samples integrated over the window",
    "energy_disagreement": "|energy_integrated_j - energy_counter_j| / energy_counter_j",
    "energy_disagrees": "true when energy_disagreement > 0.10: distrust the energy figures of this record",
    "power_mean_w": "energy_j / energy_window_s (time-weighted mean power)",
    "n_telemetry_samples": "telemetry samples read inside the window",
    "power_p99_w": "99th percentile of the power samples inside the window",
    "power_max_w": "highest power sample inside the window",
    "power_limit_w": "enforced power limit at the window's start, as found (never changed)",
    "sm_clock_min_mhz": "lowest SM clock sampled inside the window",
    "sm_clock_mean_mhz": "mean SM clock of the samples inside the window",
    "mem_clock_mean_mhz": "mean memory clock of the samples inside the window",
    "temperature_max_c": "highest GPU temperature sampled inside the window",
    "gpu_util_mean_pct": "mean NVML GPU utilisation (share of time a kernel ran), percent",
    "mem_util_mean_pct": "mean NVML memory utilisation (share of time memory was read or written), percent",
    "vram_used_peak_bytes": "highest device memory in use sampled by NVML (every process on the GPU)",
    "clock_event_shares": "share of samples with each NVML clock-event (throttle) reason set, e.g. "
    '{"sw_power_cap": 0.4}; reasons never seen are left out',
    "clock_limited_share": "share of samples whose clocks were held down by any reason but gpu_idle",
    "energy_per_call_j": "energy_j / energy_window_calls",
    "energy_per_token_j": "energy_j / (tokens x energy_window_calls): J per token counted by the workload "
    "(decode: output tokens, with their prefill)",
    "energy_per_tflop_j": "energy_j / (flops x energy_window_calls / 1e12)",
    "tokens_per_s_per_w": "tokens per joule over the window, tokens x energy_window_calls / energy_j (= tokens/s "
    "per W of mean power)",
    "idle_power_w": "the run's idle baseline: mean device power at rest before the first workload (run header 'idle')",
    "energy_above_idle_j": "energy_j - idle_power_w x energy_window_s: what the work added over idling",
    "cpu_energy_j": "host CPU package energy over the window from RAPL (null where unreadable, usually non-root)",
    "cpu_power_mean_w": "cpu_energy_j / energy_window_s",
    "cpu_energy_reason": "why cpu_energy_j is null",
    "health_change": "ok | warn (corrected ECC errors or repairs grew) | fail (uncorrected errors, pending or "
    "failed repairs: the record fails) | null (counters unreadable)",
    "health_detail": "which ECC / retired-page / remapped-row counters changed during the measurement",
}


def documented(key: str) -> bool:
    """True when FIELDS documents `key`: directly, as param_*, or as a _p90_s/_p99_s sibling."""
    if key in FIELDS or key.startswith("param_"):
        return True
    return any(key.endswith(sfx) and key[: -len(sfx)] + "_median_s" in FIELDS for sfx in ("_p90_s", "_p99_s"))


class ResultsError(ValueError):
    """A results file that cannot be read; the message names the file and line."""


def new_run_id(now: datetime | None = None) -> str:
    """`<UTC time>-<host>-<random>`: sortable, unique across nodes writing to one folder."""
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    host = "".join(c if c.isalnum() or c == "-" else "-" for c in socket.gethostname())[:32]
    return f"{now:%Y%m%dT%H%M%SZ}-{host or 'host'}-{secrets.token_hex(3)}"


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


class RunWriter:
    """Appends records to `<run-id>.jsonl`, flushed and fsynced one by one."""

    def __init__(self, out_dir: str | Path, run_id: str, header: dict[str, Any]):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.run_id = run_id
        self.records_path = self.out_dir / f"{run_id}.jsonl"
        self.header_path = self.out_dir / f"{run_id}.json"
        self.header = {
            "schema_version": SCHEMA_VERSION,
            "run_id": run_id,
            "state": "running",
            "complete": False,
            **header,
            "records_file": self.records_path.name,
        }
        self.counts = dict.fromkeys(STATUSES, 0)
        self._write_header()
        self._fh = open(self.records_path, "a", encoding="utf-8")  # noqa: SIM115 - closed in finish

    def _write_header(self) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.out_dir, prefix=".header-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(_finite(self.header), f, indent=2, allow_nan=False, default=str)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())  # on disk before the rename, so a power loss leaves old or new
        os.replace(tmp, self.header_path)  # atomic: a reader never sees half a header

    def append(self, record: dict[str, Any]) -> None:
        clean = {k: _finite(v) for k, v in record.items()}
        self._fh.write(json.dumps(clean, allow_nan=False, default=str) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.counts[record["status"]] = self.counts.get(record["status"], 0) + 1

    def finish(self, state: str, finished_at: str, error: str | None = None) -> None:
        """Close the records file and rewrite the header with the end state and counts.

        The counts are taken from the file itself: a Ctrl-C between a record's fsync and the
        in-memory tally must not make the header disagree with what is on disk.
        """
        self._fh.close()
        self.counts = dict.fromkeys(STATUSES, 0)
        with open(self.records_path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    status = json.loads(line)["status"]
                    self.counts[status] = self.counts.get(status, 0) + 1
        self.header.update(
            {
                "state": state,
                "complete": state == "complete",
                "finished_at": finished_at,
                "error": error,
                "n_records": sum(self.counts.values()),
                **{f"n_{s}": n for s, n in self.counts.items()},
            }
        )
        self._write_header()


class TimelineWriter:
    """`<run-id>.timeline.csv`: every telemetry sample of every measurement, beside the records.

    One row per sample: the record's `seq`, `t_s` from the window's start (negative: the read
    just before it), `in_window`, then the sample's values. Flushed after each measurement.
    """

    def __init__(self, out_dir: str | Path, run_id: str, columns: Iterable[str]):
        self.path = Path(out_dir) / f"{run_id}.timeline.csv"
        self.columns = ["seq", "t_s", "in_window", *columns]
        self._fh = open(self.path, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed in close()
        self._csv = csv.writer(self._fh)
        self._csv.writerow(self.columns)
        self._fh.flush()

    def append(self, seq: int, t0_s: float, t1_s: float, samples: Iterable[Any]) -> None:
        """Write the samples of one window (objects with the columns as attributes, and t_s)."""
        for smp in samples:
            row = [seq, f"{smp.t_s - t0_s:.6f}", t0_s <= smp.t_s <= t1_s]
            row += [getattr(smp, c) for c in self.columns[3:]]
            self._csv.writerow(["" if v is None else v for v in row])
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ResultsError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise ResultsError(f"{path}:{lineno}: a record must be a JSON object")
            version = row.get("schema_version")
            if version != SCHEMA_VERSION:
                raise ResultsError(f"{path}:{lineno}: unsupported schema_version {version!r}")
            for key in ("run_id", "workload", "status"):
                if key not in row:
                    raise ResultsError(f"{path}:{lineno}: missing field {key!r}")
            if row["status"] not in STATUSES:
                raise ResultsError(f"{path}:{lineno}: status {row['status']!r} is not one of {STATUSES}")
            rows.append(row)
    return rows


def read_header(records_path: Path) -> dict[str, Any] | None:
    """The run header beside a records file, or None when it is missing."""
    header_path = records_path.with_suffix(".json")
    if not header_path.exists():
        return None
    try:
        header = json.loads(header_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ResultsError(f"{header_path}: not valid JSON ({e.msg})") from None
    if not isinstance(header, dict):
        raise ResultsError(f"{header_path}: a run header must be a JSON object")
    return header


def _record_files(paths: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(p.rglob("*.jsonl")))
        elif p.suffix == ".json" and p.with_suffix(".jsonl").exists():
            files.append(p.with_suffix(".jsonl"))
        elif p.is_file():
            files.append(p)
        else:
            raise ResultsError(f"{p}: no such file or directory")
    return files


def load(*paths: str | Path) -> pd.DataFrame:
    """Records from .jsonl files, run headers or directories (searched recursively).

    Adds `run_state` and `run_complete` from each run's header ("missing" when it has none).
    """
    rows: list[dict[str, Any]] = []
    for path in _record_files(paths):
        header = read_header(path)
        state = header.get("state", "unknown") if header else "missing"
        for row in _read_jsonl(path):
            rows.append({**row, "run_state": state, "run_complete": state == "complete"})
    return pd.DataFrame(rows)
