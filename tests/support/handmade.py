"""Hand-made results of an H100 node, written through RunWriter, for report and compare tests.

Not measurements: every figure is derived from a chosen median time per configuration, with the
same formulas the runner uses, so tests can state what each comparison must conclude.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from bench.measure.runner import peak_fields
from bench.measure.stats import summarize
from bench.results.schema import SCHEMA_VERSION
from bench.results.writer import RunWriter

H100 = "NVIDIA H100 80GB HBM3"
POWER_W = 600.0
IDLE_W = 90.0

# (workload, family, label, params, median time per call in s, flops, bytes, tokens)
CONFIGS: list[tuple[str, str, str, dict[str, Any], float, float | None, float | None, int | None]] = [
    ("gemm", "gemm", "8192x8192x8192 bf16", {"m": 8192, "n": 8192, "k": 8192, "dtype": "bf16"},
     1.8e-3, 2 * 8192**3, 3 * 8192 * 8192 * 2, None),
    ("copy", "memory", "1024 MiB", {"size_mib": 1024}, 0.8e-3, None, 2 * 2**30, None),
    ("attention", "attention", "b4 h32/8kv s4096 d128 causal bf16",
     {"batch": 4, "heads": 32, "kv_heads": 8, "seq_len": 4096, "head_dim": 128, "dtype": "bf16"},
     1.1e-3, 2 * 2 * 4 * 32 * 4096 * 4096 * 128 / 2, 4 * 4096 * 128 * 2 * (32 + 8 + 8 + 32), 4 * 4096),
    ("decode", "llm", "llama-3.1-8b b1 pp512+tg128", {"model": "llama-3.1-8b", "batch": 1, "prompt_len": 512,
     "new_tokens": 128}, 1.0, 2 * 8e9 * 128, 16e9 * 128, 128),
    ("decode", "llm", "llama-3.1-8b b32 pp512+tg128", {"model": "llama-3.1-8b", "batch": 32, "prompt_len": 512,
     "new_tokens": 128}, 1.6, 2 * 8e9 * 128 * 32, 16e9 * 128, 128 * 32),
    ("prefill", "llm", "llama-3.1-8b b1 pp512", {"model": "llama-3.1-8b", "batch": 1, "prompt_len": 512},
     0.012, 2 * 8e9 * 512, 16e9, 512),
]  # fmt: skip


def samples(median_s: float, n: int, noise: float, seed: int) -> list[float]:
    """n samples around `median_s` with relative spread `noise`, shifted so the median is exact."""
    x = np.random.default_rng(seed).normal(1.0, noise, n) if noise > 0 else np.ones(n)
    x = x - np.median(x) + 1.0
    return [float(v) for v in median_s * x]


def record(run_id: str, seq: int, host: str, gpu: int, cfg: tuple, slowdown: float, noise: float, n: int,
           seed: int, **over: Any) -> dict[str, Any]:  # fmt: skip
    workload, family, label, params, base_s, flops, nbytes, tokens = cfg
    ts = samples(base_s * (1 + slowdown), n, noise, seed)
    s = summarize(ts)
    med = s.median
    dtype = params.get("dtype", "bf16")
    rec: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION, "run_id": run_id, "seq": seq, "workload": workload, "workload_version": 1,
        "family": family, "label": label, **{f"param_{k}": v for k, v in params.items()}, "status": "ok",
        "reason": None, "hostname": host, "device": f"cuda:{gpu}", "device_kind": "cuda", "device_name": H100,
        "gpu_index": gpu, "gpu_uuid": f"GPU-{host}-{gpu}", "tokenbench_version": "0.1.0",
        "torch_version": "2.13.0+cu128", "cuda_version": "12.8", "driver_version": "570.86.15", "n_samples": n,
        "samples_s": ts, "time_median_s": med, "time_mean_s": s.mean, "time_cv": s.cv, "cv_threshold": 0.05,
        "unstable": bool(s.cv > 0.05), "flops": flops, "bytes": nbytes, "tokens": tokens,
        "tflops": flops / med / 1e12 if flops else None, "gb_per_s": nbytes / med / 1e9 if nbytes else None,
        "tokens_per_s": tokens / med if tokens else None, "check_passed": True, "power_mean_w": POWER_W,
        "idle_power_w": IDLE_W, "power_limit_w": 700.0, "sm_clock_mean_mhz": 1980.0, "energy_window_calls": n,
        "energy_j": POWER_W * med * n, "energy_source": "nvml_energy_counter",
    }  # fmt: skip
    rec.update(peak_fields(H100, dtype, rec["tflops"], rec["gb_per_s"]))
    rec["energy_per_call_j"] = POWER_W * med
    rec["energy_per_tflop_j"] = POWER_W * med / (flops / 1e12) if flops else None
    if family == "llm":
        rec["energy_per_token_j"] = POWER_W * med / tokens
        rec["model_preset"] = params["model"]
        rec["compute_dtype"] = "bf16"
    if workload == "decode":
        new = params["new_tokens"]
        rec["output_tokens_per_s"] = params["batch"] * new / med
        rec["tpot_median_s"] = med / new
        rec["ttft_median_s"] = med / new
        rec["per_user_tokens_per_s"] = new / med
    rec.update(over)
    return rec


def write_run(out: Path, host: str, gpu: int = 0, slowdown: float | dict[str, float] = 0.0, noise: float = 0.01,
              n: int = 40, seed: int = 0, env: dict[str, Any] | None = None, skip: tuple[str, ...] = (),
              **over: Any) -> Path:  # fmt: skip
    """One run of every configuration on one GPU; `slowdown` per label where a dict. Returns the .jsonl path."""
    safe = "".join(ch if ch.isalnum() else "-" for ch in host)[:24]
    run_id = f"20261101T000000Z-{safe}-{gpu:02d}{seed:04d}"
    environment = {"driver_version": "570.86.15", "cuda_version": "12.8", "torch_version": "2.13.0+cu128",
                   "tokenbench_version": "0.1.0", "device_name": H100, "gpu_power_limit_w": 700.0,
                   "gpu_sm_clock_max_mhz": 1980, **(env or {})}  # fmt: skip
    writer = RunWriter(out, run_id, {"suite": "node", "started_at": "2026-11-01T00:00:00Z", "environment": environment})
    for seq, cfg in enumerate(c for c in CONFIGS if c[2] not in skip):
        down = slowdown.get(cfg[2], 0.0) if isinstance(slowdown, dict) else slowdown
        writer.append(record(run_id, seq, host, gpu, cfg, down, noise, n, seed * 100 + seq, **over))
    writer.finish("complete", "2026-11-01T00:10:00Z")
    return writer.records_path


def geomean(xs: list[float]) -> float:
    return math.exp(sum(map(math.log, xs)) / len(xs))
