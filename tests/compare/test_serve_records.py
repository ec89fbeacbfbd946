"""Serve records (family "serve", one per load point, samples_s = each request's end-to-end latency) compare like
any other record: matched on their parameters, judged on the median E2EL, failed load points fail."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.compare.model import compare, config_key
from bench.measure.stats import summarize
from bench.results.reader import read_runs
from bench.results.schema import SCHEMA_VERSION
from bench.results.writer import RunWriter

H200 = "NVIDIA H200"
POINTS = {  # label: (request rate, max concurrency, median E2EL in s)
    "conc 64, 1024/1024 random": (None, 64, 12.0),
    "rate 5/s, 1024/1024 random": (5.0, None, 9.0),
}


def serve_record(run_id: str, seq: int, label: str, slower: float, seed: int, **over: Any) -> dict[str, Any]:
    """One load point as the serve contract writes it; E2EL samples 2% apart around the chosen median."""
    rate, conc, e2el_s = POINTS[label]
    x = np.random.default_rng(seed).normal(1.0, 0.02, 200)
    samples = [float(v) for v in e2el_s * (1 + slower) * (x - np.median(x) + 1.0)]
    s = summarize(samples)
    rec = {
        "schema_version": SCHEMA_VERSION, "run_id": run_id, "seq": seq, "workload": "serve", "workload_version": 1,
        "family": "serve", "label": label, "status": "ok", "reason": None, "hostname": "client",
        "device": "cuda:0", "device_kind": "cuda", "device_name": H200, "gpu_index": 0, "gpu_uuid": "GPU-client-0",
        "tokenbench_version": "0.1.0", "param_dataset": "random", "param_input_len": 1024, "param_output_len": 1024,
        "param_range_ratio": 0.0, "param_request_rate": rate, "param_burstiness": 1.0,
        "param_max_concurrency": conc, "param_num_prompts": 200, "param_endpoint": "/v1/completions",
        "param_server_model": "meta-llama/Llama-3.1-8B-Instruct", "requests_completed": 200, "requests_failed": 0,
        "failure_rate": 0.0, "output_tokens_per_s": 200 * 1024 / (s.median * 20), "e2el_median_s": s.median,
        "samples_s": samples, "n_samples": s.n, "time_median_s": s.median, "time_cv": s.cv,
        "unstable": bool(s.cv > 0.05), "slo_met": True,
    }  # fmt: skip
    rec.update(over)
    return rec


def serve_run(out: Path, name: str, slower: dict[str, float] | None = None, seed: int = 0, **over: Any) -> None:
    run_id = f"20261129T000000Z-{name}"
    writer = RunWriter(out, run_id, {"started_at": "2026-11-29T00:00:00Z", "serve": {"base_url": "http://x"}})
    for seq, label in enumerate(POINTS):
        writer.append(serve_record(run_id, seq, label, (slower or {}).get(label, 0.0), seed + seq, **over))
    writer.finish("complete", "2026-11-29T00:10:00Z")


def test_serve_load_points_are_matched_on_their_parameters():
    conc = serve_record("r", 0, "conc 64, 1024/1024 random", 0.0, 0)
    rate = serve_record("r", 1, "rate 5/s, 1024/1024 random", 0.0, 0)
    assert config_key(conc) != config_key(rate)
    # a null request rate (send at once) is the same load point as one whose rate is absent
    assert config_key(conc) == config_key({k: v for k, v in conc.items() if k != "param_request_rate"})
    assert config_key(conc) != config_key({**conc, "param_input_len": 2048})


def test_a_slower_median_e2el_fails_and_an_unchanged_one_passes(tmp_path):
    serve_run(tmp_path / "base", "base")
    serve_run(tmp_path / "cand", "cand", slower={"conc 64, 1024/1024 random": 0.10}, seed=10)
    result = compare(read_runs(tmp_path / "base"), read_runs(tmp_path / "cand"))
    items = {c.config: c for c in result.comparisons}
    slow, same = items["conc 64, 1024/1024 random"], items["rate 5/s, 1024/1024 random"]
    assert slow.workload == "serve" and slow.verdict == "FAIL"
    assert slow.change == pytest.approx(0.10)  # 13.2 s / 12 s - 1: medians exact by construction
    assert slow.baseline_median_s == pytest.approx(12.0) and slow.candidate_median_s == pytest.approx(13.2)
    assert 0.05 < slow.ci_low <= 0.10 <= slow.ci_high and slow.baseline_n == slow.candidate_n == 200
    assert same.verdict == "PASS" and same.change == pytest.approx(0.0, abs=1e-12)
    assert result.verdict == "FAIL" and result.exit_code == 1


def test_a_failed_load_point_fails_whatever_its_latency(tmp_path):
    serve_run(tmp_path / "base", "base")
    serve_run(tmp_path / "cand", "cand", seed=10, status="failed", reason="failure rate 0.12 > 0.05",
              requests_failed=24, failure_rate=0.12)  # fmt: skip
    result = compare(read_runs(tmp_path / "base"), read_runs(tmp_path / "cand"))
    assert {c.verdict for c in result.comparisons} == {"FAIL"}
    assert result.comparisons[0].why.startswith("candidate failed: failure rate 0.12 > 0.05")


def test_a_null_unstable_is_not_noisy_and_a_slowdown_still_fails(tmp_path):
    """Serve records leave `unstable` null (their own checks judge a load point): the CV rule passes over it."""
    serve_run(tmp_path / "base", "base", unstable=None)
    serve_run(tmp_path / "cand", "cand", slower={"conc 64, 1024/1024 random": 0.10}, seed=10, unstable=None)
    items = {c.config: c for c in compare(read_runs(tmp_path / "base"), read_runs(tmp_path / "cand")).comparisons}
    assert items["conc 64, 1024/1024 random"].verdict == "FAIL"
    same = items["rate 5/s, 1024/1024 random"]
    assert same.verdict == "PASS" and same.noisy == [] and same.why == ""


def test_a_load_point_whose_client_was_starved_is_at_most_warn(tmp_path):
    busy = "other processes used 1.80 of 2 CPUs while the requests ran (the client fell behind its schedule)"
    serve_run(tmp_path / "base", "base", unstable=None)
    serve_run(tmp_path / "cand", "cand", slower={"conc 64, 1024/1024 random": 0.10}, seed=10, unstable=None,
              contended=True, contention_reason=busy)  # fmt: skip
    result = compare(read_runs(tmp_path / "base"), read_runs(tmp_path / "cand"))
    slow = {c.config: c for c in result.comparisons}["conc 64, 1024/1024 random"]
    assert slow.verdict == "WARN" and slow.contended == ["candidate"] and slow.change == pytest.approx(0.10)
    assert slow.why.startswith(f"candidate measured on a busy host ({busy}): at most WARN (else FAIL")
    assert result.verdict == "WARN" and result.exit_code == 0
