"""The results schema as types: every record and run header read from disk is checked against it.

Results files come from other machines and other teams, so they are untrusted input: parsed as
JSON only (no NaN or Infinity literals either), and each field must have its documented type
before anything reads it. A wrong type is an error naming the file, the line and the field.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from bench.errors import first_error
from bench.results import files
from bench.results.host_fields import HOST_BOOL, HOST_FIELDS, HOST_INT, HOST_STR
from bench.results.serve_fields import SERVE_BOOL, SERVE_DICT, SERVE_FIELDS, SERVE_INT, SERVE_STR

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
    "rank": "with several processes (torchrun): this process's global rank; absent in a one-process run",
    "local_rank": "with several processes: the rank within its node (the GPU index it took)",
    "node_rank": "with several processes: the node's index in the job (torchrun's GROUP_RANK)",
    "world_size": "with several processes: how many ranks took part",
    "backend": "collectives: the torch.distributed backend (nccl on GPUs, gloo on the CPU)",
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
    "unstable": "true when time_cv > cv_threshold (or cannot be computed), or when the timer stopped at its "
    "time limit with fewer than the suite's min_reps samples: do not trust the median",
    "flops": "analytic floating-point operations of one call (null where not meaningful)",
    "bytes": "analytic bytes one call must move to or from device memory",
    "tokens": "tokens processed by one call (null for kernels without tokens)",
    "tflops": "flops / time_median_s / 1e12",
    "gb_per_s": "bytes / time_median_s / 1e9",
    "tokens_per_s": "tokens / time_median_s",
    "job_tokens_per_s": "with several processes: the sum of every rank's tokens_per_s for this entry (summed over "
    "ranks, never averaged); null unless every rank's record is ok",
    "job_ranks": "with several processes: how many ranks' records job_tokens_per_s sums",
    "size_bytes": "collectives: S by the nccl-tests definition (all-reduce buffer, all-gather output, "
    "reduce-scatter input), rounded down to whole elements per rank",
    "algbw_gb_per_s": "collectives: size_bytes / time_median_s / 1e9",
    "busbw_factor": "collectives: nccl-tests' factor, all-reduce 2(n-1)/n, all-gather and reduce-scatter (n-1)/n",
    "busbw_gb_per_s": "collectives: algbw_gb_per_s x busbw_factor",
    "wrong_values": "collectives: values this rank received that differ from the exact result in the check",
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
    "flops_per_token": "model FLOPs per token (PaLM appendix B) counting every attention pair, as torchtitan, nanoGPT, "
    "Megatron-LM and PaLM do (train: 6N + 12·L·H·Q·T)",
    "flops_per_token_causal": "model FLOPs per token counting only the unmasked (causal) attention pairs, once each "
    "(train: 6N + 6·L·H·Q·(T+1)); the record's flops counts these",
    "mfu": "model FLOPs utilisation as published (torchtitan, nanoGPT, Megatron-LM, PaLM): flops_per_token x tokens/s "
    "/ dense peak of compute_dtype; the tables show this one (null: peak unknown)",
    "mfu_causal": "MFU counting only the causal half of the attention scores: flops_per_token_causal x tokens/s / "
    "dense peak (null: peak unknown); below mfu by attention's share",
    "compile_s": "LLM workloads with compile=true: the first call, which compiles (never inside the samples)",
    "loss": "train: cross-entropy of the last timed step; the batch is the same every step, so it falls as the "
    "model memorises it: a finiteness check, not a quality figure",
    "output_tokens_per_s": "decode: B x new tokens / median end-to-end time of a batch",
    "per_user_tokens_per_s": "decode and serve: 1 / median TPOT, the interactivity one user sees",
    "ttft_median_s": "decode and serve: time to first token (prefill and the first greedy choice); also _p90_s, _p99_s",
    "tpot_median_s": "decode and serve: time per output token after the first, (e2e - TTFT) / (M - 1); also "
    "_p90_s, _p99_s",
    "itl_median_s": "decode and serve: gaps between consecutive tokens, pooled over calls; also _p90_s, _p99_s",
    "e2e_median_s": "decode: start of a batch to its last token; also _p90_s, _p99_s",
    "decode_step_bytes": "decode: bytes a step must move: every weight a token multiplies once (not the input "
    "embedding table, a lookup that reads one row per token) plus the KV cache at the mean context",
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
    "phase": "soak for an interval of tokenbench accept's soak; absent for a suite entry",
    "soak_interval": "the soak interval's index, from 0 (its label says 'k/n')",
    "soak_interval_s": "the soak's interval length, seconds (each interval is timed this long, no warm-up)",
}
CORE_FIELDS = dict(FIELDS)  # results/README.md documents these and the host fields
FIELDS.update(HOST_FIELDS)  # the host's state during the window (bench/results/host_fields.py)
FIELDS.update(SERVE_FIELDS)  # serving load points (bench/results/serve_fields.py, bench/serve/README.md)
FIELDS.update(SERVE_DICT)


def documented(key: str) -> bool:
    """True when FIELDS documents `key`: directly, as param_*, or as a _p90_s/_p99_s sibling."""
    if key in FIELDS or key.startswith("param_"):
        return True
    return any(key.endswith(sfx) and key[: -len(sfx)] + "_median_s" in FIELDS for sfx in ("_p90_s", "_p99_s"))


# Types by field; every other documented field (and every _p90_s / _p99_s sibling) is a number.
INT_FIELDS = ("schema_version", "seq", "workload_version", "gpu_index", "n_samples", "rank", "local_rank", "node_rank",
              "world_size", "job_ranks", "size_bytes", "wrong_values", "soak_interval",
              *HOST_INT, *SERVE_INT)  # fmt: skip
BOOL_FIELDS = ("l2_flushed", "unstable", "check_passed", "energy_disagrees", *HOST_BOOL, *SERVE_BOOL)
STR_FIELDS = (
    "run_id", "workload", "family", "label", "status", "reason", "started_at", "finished_at", "hostname",
    "device", "device_kind", "device_name", "gpu_uuid", "tokenbench_version", "torch_version", "cuda_version",
    "driver_version", "timer", "peak_gpu_id", "peak_source", "peak_reason", "model_preset", "compute_dtype",
    "kernel", "check_detail", "telemetry_source", "power_reading", "energy_source", "energy_reason",
    "cpu_energy_reason", "health_change", "health_detail", "backend", "phase", *HOST_STR, *SERVE_STR,
)  # fmt: skip
REQUIRED = ("schema_version", "run_id", "workload", "status")
Scalar = str | int | float | bool | None


def _field_type(key: str) -> Any:
    if key in INT_FIELDS:
        return int
    if key in BOOL_FIELDS:
        return bool
    if key in STR_FIELDS:
        return str
    if key == "samples_s":
        return list[Annotated[float, Field(gt=0)]]  # a timed call takes some time
    if key == "clock_event_shares" or key in SERVE_DICT:
        return dict[str, float]
    return float


def _record_model() -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for key in FIELDS:
        if key == "param_*":
            continue
        kind = _field_type(key)
        fields[key] = (kind, ...) if key in REQUIRED else (kind | None, None)
        if key.endswith("_median_s"):  # a time: never negative
            fields[key] = (Annotated[float, Field(ge=0)] | None, None)
            for sfx in ("_p90_s", "_p99_s"):
                fields[key[: -len("_median_s")] + sfx] = (Annotated[float, Field(ge=0)] | None, None)
    # Undocumented keys (a newer tokenbench's) are kept, but only as JSON scalars or lists of them.
    config = ConfigDict(strict=True, extra="allow", allow_inf_nan=False)
    return create_model("Record", __config__=config, **fields)


Record = _record_model()


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is out of range for a number")
    return value


# A float holds at most about 1.8e308, a number of 309 digits: an integer with more could not be
# compared, averaged or plotted (float() raises OverflowError), so it is refused like 1e999.
_MAX_INT_DIGITS = len(str(int(sys.float_info.max)))


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    value = int(text) if digits <= _MAX_INT_DIGITS else None  # never int() of thousands of digits
    if value is None or abs(value) > sys.float_info.max:
        raise ValueError(f"an integer of {digits} digits is out of range for a number")
    return value


def parse_json(text: str) -> Any:
    """json.loads without Python's NaN / Infinity extension: a number must be finite (1e999 is not),
    and so must an integer as a float (a 401-digit integer is not)."""
    return json.loads(text, parse_constant=_reject_constant, parse_float=_finite, parse_int=_bounded_int)


class JsonFileError(ValueError):
    """A JSON file that cannot be read as data; the message is one line naming the file."""


def read_json_file(path: Path, what: str, limit: int | None = None) -> Any:
    """The parsed contents of `path` (`what` it should be, for the error), finite numbers only.

    Read only from a regular file of at most `limit` bytes (None: files.limit_bytes()).
    """
    limit = files.limit_bytes() if limit is None else limit  # a malformed setting is its own ValueError
    try:
        return parse_json(files.read_bytes_bounded(path, limit, what).decode("utf-8"))
    except OSError as e:
        raise JsonFileError(f"{path}: cannot read ({e.strerror or e})") from None
    except RecursionError:
        raise JsonFileError(f"{path}: not {what} (JSON nested too deeply)") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise JsonFileError(f"{path}: not valid JSON ({getattr(e, 'msg', e)})") from None


def check_record(row: Any) -> str | None:
    """Why `row` is not a valid record (one line), or None when it is."""
    if not isinstance(row, dict):
        return "a record must be a JSON object"
    version = row.get("schema_version")
    if version != SCHEMA_VERSION:
        return f"unsupported schema_version {version!r} (this tokenbench reads {SCHEMA_VERSION})"
    try:
        Record.model_validate(row)
    except ValidationError as e:
        return first_error(e, show_input=True)
    if row["status"] not in STATUSES:
        return f"status {row['status']!r} is not one of {', '.join(STATUSES)}"
    for key, value in row.items():
        if key.startswith("param_") and not isinstance(value, Scalar):
            return f"{key!r}: a parameter must be a string, number, true/false or null"
        if key not in Record.model_fields and not _plain(value):
            return f"{key!r}: an unknown field must hold plain JSON values"
    return None


def _plain(value: Any, depth: int = 0) -> bool:
    if isinstance(value, Scalar):
        return True
    if depth > 2:
        return False
    if isinstance(value, list):
        return all(_plain(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v, depth + 1) for k, v in value.items())
    return False


class Header(BaseModel):
    """The run header fields tokenbench reads; the rest (environment details) is shown as text."""

    model_config = ConfigDict(strict=True, extra="allow", allow_inf_nan=False)

    schema_version: int
    run_id: str
    state: str
    suite: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    environment: dict[str, Scalar | list[Any] | dict[str, Any]] | None = None


def check_header(header: Any) -> str | None:
    """Why `header` is not a valid run header (one line), or None when it is."""
    if not isinstance(header, dict):
        return "a run header must be a JSON object"
    try:
        Header.model_validate(header)
    except ValidationError as e:
        return first_error(e, show_input=True)
    if header["schema_version"] != SCHEMA_VERSION:  # its fields may mean something else: not read
        return f"unsupported schema_version {header['schema_version']} (this tokenbench reads {SCHEMA_VERSION})"
    return None
