"""Hand-built `tokenbench serve` records (the names of the serve contract), for the report's tests.

Not measurements: each load point's figures follow from a chosen TPOT, TTFT and concurrency with
vLLM's definitions, so tests can state what the table and the plot must show.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.results.schema import SCHEMA_VERSION
from bench.results.writer import RunWriter

H200 = "NVIDIA H200"
OUTPUT_LEN = 1024
NUM_PROMPTS = 200


def serve_record(run_id: str, seq: int, conc: int, tpot_s: float, ttft_s: float, **over: Any) -> dict[str, Any]:
    """A load point at concurrency `conc`: every request streams OUTPUT_LEN tokens at `tpot_s` after `ttft_s`."""
    e2el = ttft_s + tpot_s * (OUTPUT_LEN - 1)
    duration = NUM_PROMPTS / conc * e2el
    out_tps = NUM_PROMPTS * OUTPUT_LEN / duration
    rec: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION, "run_id": run_id, "seq": seq, "workload": "serve", "workload_version": 1,
        "family": "serve", "label": f"conc {conc}, 1024/1024 random", "status": "ok", "reason": None,
        "hostname": "gpu-node", "device": "cuda:0", "device_kind": "cuda", "device_name": H200, "gpu_index": 0,
        "tokenbench_version": "0.1.0", "seed": 0,
        "param_dataset": "random", "param_input_len": 1024, "param_output_len": OUTPUT_LEN, "param_range_ratio": 0.0,
        "param_request_rate": None, "param_burstiness": 1.0, "param_max_concurrency": conc,
        "param_num_prompts": NUM_PROMPTS, "param_endpoint": "/v1/completions", "param_server_model": "llama-3.1-8b",
        "requests_completed": NUM_PROMPTS, "requests_failed": 0, "failure_rate": 0.0,
        "input_tokens_total": NUM_PROMPTS * 1024, "output_tokens_total": NUM_PROMPTS * OUTPUT_LEN,
        "output_tokens_source": "usage", "duration_s": duration, "request_throughput": NUM_PROMPTS / duration,
        "output_throughput": out_tps, "total_token_throughput": 2 * out_tps, "output_tokens_per_s": out_tps,
        "per_user_tokens_per_s": 1 / tpot_s, "num_gpus": 1, "output_tokens_per_s_per_gpu": out_tps,
        "max_concurrent_requests": conc,
        **{f"{m}_{s}_s": v for m, v in (("ttft", ttft_s), ("tpot", tpot_s), ("itl", tpot_s), ("e2el", e2el),
                                        ("queue", 0.0)) for s in ("mean", "median", "p90", "p99")},
        "slo_ttft_s": 2.0, "slo_tpot_s": 0.1, "slo_e2el_s": None, "good_requests": NUM_PROMPTS,
        "goodput": NUM_PROMPTS / duration, "slo_attainment": 1.0, "slo_target": 0.99, "slo_met": True,
        "client_lag_max_s": 0.001, "client_lag_p99_s": 0.0005, "client_cpu_s": 1.0, "client_limited": False,
        "client_limited_reason": None, "energy_j": None, "energy_reason": "no NVML on the client's node",
        "samples_s": [e2el] * 5, "time_median_s": e2el, "time_cv": 0.0, "n_samples": 5, "unstable": False,
    }  # fmt: skip
    rec.update(over)
    return rec


# (concurrency, TPOT s, TTFT s): more users, more throughput, slower per user; conc 64 misses the 100 ms TPOT SLO
POINTS = [(1, 0.010, 0.05), (8, 0.020, 0.08), (64, 0.125, 0.4)]


def write_serve_run(out: Path, run_id: str = "20261101T000000Z-gpu-node-serve1", **over: Any) -> Path:
    """A concurrency sweep of three load points; the last one misses its SLO. Returns the .jsonl path."""
    header = {"suite": "serve", "started_at": "2026-11-01T00:00:00Z", "environment": {"device_name": H200},
              "serve": {"base_url": "http://127.0.0.1:8000", "endpoint": "/v1/completions",
                        "server_model": "llama-3.1-8b", "dataset": "random"}}  # fmt: skip
    writer = RunWriter(out, run_id, header)
    for seq, (conc, tpot, ttft) in enumerate(POINTS):
        extra: dict[str, Any] = {}
        if conc == 64:
            extra = {"slo_met": False, "slo_attainment": 0.0, "good_requests": 0, "goodput": 0.0}
        writer.append(serve_record(run_id, seq, conc, tpot, ttft, **{**extra, **over}))
    writer.finish("complete", "2026-11-01T00:10:00Z")
    return writer.records_path
