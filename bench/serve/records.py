"""A load point as a tokenbench record, and every request of it as a line of the sidecar file.

One record per load point (family `serve`): its parameters, counts, rates, latency distributions,
SLO verdict, the client's self-check and the energy over its window, with the field names of
bench/results/serve_fields.py. `samples_s` holds every completed request's E2EL in send order, so the
usual time statistics (time_median_s, time_cv) let `compare` treat it like any record. A serve record
is never marked `unstable` (null, with cv_threshold null): the spread of E2EL over a load point's
requests describes the load (queueing, lengths), not noise in the measurement, and "rerun on a quiet
machine" would be the wrong advice. A starved client is marked `contended` instead (bench/serve/selfcheck.py).
Nothing here measures or prints.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.device.cpuinfo import cpu_model_name
from bench.measure.stats import summarize
from bench.results.schema import SCHEMA_VERSION
from bench.results.writer import RunWriter, finite_json, new_run_id, utc_now
from bench.serve.model import Distribution, LoadPointStats, RequestResult

WORKLOAD_VERSION = 1
METRICS = ("ttft", "tpot", "itl", "e2el", "queue")
FIXED_PERCENTILES = (90.0, 99.0)  # always in the record as {m}_p90_s, {m}_p99_s
DEFAULT_MAX_FAILURE_RATE = 0.05
DEFAULT_SLO_TARGET = 0.99


@dataclass(frozen=True)
class PointContext:
    """What a record says about its load point besides the statistics: where, what, which run."""

    run_id: str
    seq: int
    seed: int
    dataset: str
    input_len: int | None
    output_len: int | None
    range_ratio: float | None
    endpoint: str
    server_model: str | None
    num_gpus: int = 1
    slo_target: float = DEFAULT_SLO_TARGET
    max_failure_rate: float = DEFAULT_MAX_FAILURE_RATE
    host: dict[str, Any] = field(default_factory=dict)  # hostname, device, device_kind, device_name, versions
    extra: dict[str, Any] = field(default_factory=dict)  # sweep, scenario, slo_preset, num_warmups
    slo_rule: str = "goodput-attainment"  # or "mlperf-p99" (an SLO preset): see slo_fields


def rate_text(rate: float) -> str:
    """A request rate as the flags give it: 'inf' or the number without a needless '.0'."""
    return "inf" if math.isinf(rate) else f"{rate:g}"


def label(stats: LoadPointStats, ctx: PointContext) -> str:
    """e.g. 'conc 64, 1024/1024 random', 'rate 5/s, 1024/128 random' or 'rate 20/s, sharegpt' (no lengths known)."""
    spec = stats.spec
    if ctx.input_len is None and ctx.output_len is None:
        lengths = ""
    else:
        lengths = f"{ctx.input_len if ctx.input_len is not None else '?'}/{ctx.output_len or '?'} "
    load = f"rate {rate_text(spec.request_rate)}/s"
    if spec.max_concurrency is not None:
        load = f"conc {spec.max_concurrency}" + ("" if math.isinf(spec.request_rate) else f", {load}")
    return f"{load}, {lengths}{ctx.dataset}"


def distribution_fields(name: str, d: Distribution) -> dict[str, Any]:
    """{name}_mean_s, _median_s, _std_s, _p90_s, _p99_s (null where no request gave a value)."""
    return {
        f"{name}_mean_s": d.mean,
        f"{name}_median_s": d.median,
        f"{name}_std_s": d.std,
        f"{name}_p90_s": d.percentiles.get(90.0),
        f"{name}_p99_s": d.percentiles.get(99.0),
    }


def extra_percentiles(stats: LoadPointStats) -> dict[str, float]:
    """The asked percentiles beyond p90 and p99, as {"ttft_p95": seconds}."""
    out: dict[str, float] = {}
    for name in METRICS:
        for p, value in getattr(stats, name).percentiles.items():
            if p not in FIXED_PERCENTILES:
                out[f"{name}_p{p:g}"] = value
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def count_fields(stats: LoadPointStats, ctx: PointContext) -> dict[str, Any]:
    """Counts and rates; per_user_tokens_per_s = 1 / median TPOT (InferenceX's tok/s/user)."""
    total = stats.completed + stats.failed
    tpot = stats.tpot.median
    return {
        "requests_completed": stats.completed,
        "requests_failed": stats.failed,
        "failure_rate": stats.failed / total if total else None,
        "input_tokens_total": stats.input_tokens,
        "output_tokens_total": stats.output_tokens,
        "output_tokens_source": stats.output_tokens_source,
        "input_tokens_source": stats.input_tokens_source,
        "max_output_tokens_per_s": stats.max_output_tokens_per_s,
        "duration_s": stats.duration_s,
        "request_throughput": stats.request_throughput,
        "output_throughput": stats.output_throughput,
        "total_token_throughput": stats.total_token_throughput,
        "output_tokens_per_s": stats.output_throughput,
        "per_user_tokens_per_s": 1.0 / tpot if tpot else None,
        "num_gpus": ctx.num_gpus,
        "output_tokens_per_s_per_gpu": _ratio(stats.output_throughput, ctx.num_gpus),
        "max_concurrent_requests": stats.max_concurrent_requests,
    }


def slo_fields(stats: LoadPointStats, target: float, rule: str = "goodput-attainment") -> dict[str, Any]:
    """The SLO and its verdict. attainment = good / (completed + failed) either way (vLLM's goodput count).
    slo_met by `rule`: "goodput-attainment": attainment >= target; "mlperf-p99" (SLO presets, MLPerf's
    server rule): each given bound holds at the 99th percentile, separately (p99 TTFT <= bound, p99 TPOT
    <= bound, p99 E2EL <= bound); False when nothing completed."""
    slo = stats.slo
    total = stats.completed + stats.failed
    good = stats.good_requests if slo is not None else None
    attainment = good / total if good is not None and total else (0.0 if good is not None else None)
    met: bool | None = None
    if slo is not None and rule == "mlperf-p99":
        pairs = ((slo.ttft_s, stats.ttft), (slo.tpot_s, stats.tpot), (slo.e2el_s, stats.e2el))
        p99s = [(bound, d.percentiles.get(99.0)) for bound, d in pairs if bound is not None]
        met = stats.completed > 0 and all(v is not None and v <= bound for bound, v in p99s)
    elif attainment is not None:
        met = attainment >= target
    return {
        "slo_ttft_s": slo.ttft_s if slo else None,
        "slo_tpot_s": slo.tpot_s if slo else None,
        "slo_e2el_s": slo.e2el_s if slo else None,
        "good_requests": good,
        "goodput": stats.goodput if slo is not None else None,
        "slo_attainment": attainment,
        "slo_target": target if slo is not None and rule != "mlperf-p99" else None,
        "slo_rule": rule if slo is not None else None,
        "slo_met": met,
    }


def sample_fields(results: Iterable[RequestResult]) -> dict[str, Any]:
    """samples_s = every completed request's E2EL in send order, and the time statistics of them."""
    done = sorted((r for r in results if r.ok and r.e2el_s is not None and r.e2el_s > 0), key=lambda r: r.sent_s)
    samples = [float(r.e2el_s) for r in done if r.e2el_s is not None]
    if not samples:
        return {"samples_s": [], "n_samples": 0, "time_median_s": None, "time_mean_s": None, "time_cv": None,
                "cv_threshold": None, "unstable": None}  # fmt: skip
    s = summarize(samples)
    return {
        **s.record_fields(samples),
        "cv_threshold": None,  # the spread is the load's, not noise: never `unstable` (module docstring)
        "unstable": None,
    }


def energy_per_token(energy: dict[str, Any], output_tokens: int) -> dict[str, Any]:
    """J per output token and output tokens per joule, from the window's energy_j (null stays null)."""
    joules = energy.get("energy_j")
    return {
        "energy_per_token_j": joules / output_tokens if joules is not None and output_tokens else None,
        "tokens_per_s_per_w": output_tokens / joules if joules and output_tokens else None,
    }


def verdict(stats: LoadPointStats, max_failure_rate: float, interrupted: bool) -> tuple[str, str | None]:
    """ok, or failed with the reason: interrupted, nothing completed, or too many failures."""
    total = stats.completed + stats.failed
    if interrupted:
        return "failed", f"interrupted by the user after {stats.completed} of {total} requests completed"
    if stats.completed == 0:
        return "failed", f"no request completed ({stats.failed} failed; see the requests sidecar for reasons)"
    rate = stats.failed / total
    if rate > max_failure_rate:
        return "failed", f"{stats.failed} of {total} requests failed ({rate:.1%} > --max-failure-rate " \
                         f"{max_failure_rate:.1%})"  # fmt: skip
    return "ok", None


def point_record(
    stats: LoadPointStats,
    results: list[RequestResult],
    ctx: PointContext,
    *,
    started_at: str,
    energy: dict[str, Any],
    interrupted: bool = False,
) -> dict[str, Any]:
    """The record of one load point, ready for RunWriter.append."""
    spec = stats.spec
    status, reason = verdict(stats, ctx.max_failure_rate, interrupted)
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION, "run_id": ctx.run_id, "seq": ctx.seq, "workload": "serve",
        "workload_version": WORKLOAD_VERSION, "family": "serve", "label": label(stats, ctx),
        "param_dataset": ctx.dataset, "param_input_len": ctx.input_len, "param_output_len": ctx.output_len,
        "param_range_ratio": ctx.range_ratio,
        "param_request_rate": None if math.isinf(spec.request_rate) else spec.request_rate,
        "param_burstiness": spec.burstiness, "param_max_concurrency": spec.max_concurrency,
        "param_num_prompts": spec.num_prompts, "param_endpoint": ctx.endpoint, "param_server_model": ctx.server_model,
        "status": status, "reason": reason, "seed": ctx.seed, "started_at": started_at, "finished_at": utc_now(),
        **ctx.host,
    }  # fmt: skip
    record.update(count_fields(stats, ctx))
    for name in METRICS:
        record.update(distribution_fields(name, getattr(stats, name)))
    extra = extra_percentiles(stats)
    if extra:
        record["latency_percentiles_s"] = extra
    record.update(slo_fields(stats, ctx.slo_target, ctx.slo_rule))
    record.update(
        client_lag_max_s=stats.client_lag_max_s, client_lag_p99_s=stats.client_lag_p99_s,
        client_cpu_s=stats.client_cpu_s, client_limited=stats.client_limited,
        client_limited_reason=stats.client_limited_reason, contended=stats.contended,
        contention_reason=stats.contention_reason, send_late_max_s=stats.send_late_max_s,
        send_late_p99_s=stats.send_late_p99_s,
    )  # fmt: skip
    record.update(energy)
    record.update(energy_per_token(energy, stats.output_tokens))
    record.update(sample_fields(results))
    record.update(ctx.extra)
    return record


def request_line(seq: int, r: RequestResult) -> dict[str, Any]:
    """One request of the sidecar: its load point's seq, and its timeline relative to the point's start."""
    return {
        "seq": seq, "index": r.index, "scheduled_s": r.scheduled_s, "sent_s": r.sent_s, "ttft_s": r.ttft_s,
        "e2el_s": r.e2el_s, "chunk_times_s": r.chunk_times_s, "input_tokens": r.input_tokens,
        "output_tokens": r.output_tokens, "output_tokens_source": r.output_tokens_source,
        "input_tokens_source": r.input_tokens_source, "http_status": r.http_status, "ok": r.ok, "error": r.error,
    }  # fmt: skip


class RequestsLog:
    """`<run-id>.requests.jsonl` beside the run: a line per request as it finishes, flushed at once."""

    def __init__(self, out_dir: str | Path, run_id: str):
        self.path = Path(out_dir) / f"{run_id}.requests.jsonl"
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self.lines = 0

    def append(self, seq: int, result: RequestResult) -> None:
        line = json.dumps(finite_json(request_line(seq, result)), allow_nan=False, default=str)
        self._fh.write(line + "\n")
        self._fh.flush()
        self.lines += 1

    def sync(self) -> None:
        """On disk (fsync): called when a load point ends."""
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if not self._fh.closed:
            self.sync()
            self._fh.close()


def client_host(gpu_names: list[str]) -> dict[str, Any]:
    """The record's device fields for the node the client ran on: its GPUs as NVML names them, else the CPU."""
    import socket

    import bench

    device: dict[str, Any]
    if gpu_names:
        names = sorted(set(gpu_names))
        device = {"device": "cuda", "device_kind": "cuda", "device_name": names[0] if len(names) == 1 else
                  " + ".join(names)}  # fmt: skip
    else:
        device = {"device": "cpu", "device_kind": "cpu", "device_name": cpu_model_name()}
    return {"hostname": socket.gethostname(), **device, "tokenbench_version": bench.__version__}


class ServeFiles:
    """A serve run's files: records and header through the project's RunWriter, and the requests sidecar."""

    def __init__(self, out_dir: str | Path, header: dict[str, Any]):
        run_id = new_run_id()
        self.log = RequestsLog(out_dir, run_id)
        self.writer = RunWriter(out_dir, run_id, {**header, "requests_file": self.log.path.name})
        self.records: list[dict[str, Any]] = []

    @property
    def run_id(self) -> str:
        return self.writer.run_id

    def add(self, record: dict[str, Any]) -> None:
        """A finished load point: its requests synced, then its record written (fsynced by the writer)."""
        self.log.sync()
        self.writer.append(record)
        self.records.append(record)

    def finish(self, state: str, error: str | None = None) -> None:
        self.log.close()
        self.writer.finish(state, utc_now(), error)
