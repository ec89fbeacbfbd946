"""vLLM interchange: `vllm bench serve --save-result` JSON into records and back, checked key by key."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.results import schema
from bench.serve import vllm_json as vj

# As vllm/benchmarks/serve.py writes it (--save-result --save-detailed, --goodput given, --metric-percentiles 95,99):
# ms for the statistics, seconds in the per-request lists, failed requests with an error and zeros.
VLLM = {
    "date": "20260105-101500", "endpoint_type": "openai", "backend": "openai", "label": None,
    "model_id": "meta-llama/Llama-3.1-8B-Instruct", "tokenizer_id": "meta-llama/Llama-3.1-8B-Instruct",
    "num_prompts": 4, "request_rate": "inf", "burstiness": 1.0, "max_concurrency": 2, "duration": 2.0,
    "completed": 3, "failed": 1, "total_input_tokens": 3000, "total_output_tokens": 300, "request_throughput": 1.5,
    "request_goodput": 1.0, "output_throughput": 150.0, "total_token_throughput": 1650.0,
    "max_output_tokens_per_s": 180.0, "max_concurrent_requests": 2,
    "mean_ttft_ms": 120.0, "median_ttft_ms": 100.0, "std_ttft_ms": 30.0, "p95_ttft_ms": 170.0, "p99_ttft_ms": 180.0,
    "mean_tpot_ms": 20.0, "median_tpot_ms": 16.0, "std_tpot_ms": 4.0, "p95_tpot_ms": 25.0, "p99_tpot_ms": 26.0,
    "mean_itl_ms": 19.0, "median_itl_ms": 18.0, "std_itl_ms": 2.0, "p95_itl_ms": 22.0, "p99_itl_ms": 24.0,
    "input_lens": [1000, 1000, 1000, 1000], "output_lens": [100, 100, 100, 0],
    "ttfts": [0.1, 0.1, 0.16, 0.0], "itls": [[0.02], [0.02], [0.02], []], "latencies": [1.9, 1.8, 2.0, 0.0],
    "start_times": [0.0, 0.0, 0.5, 0.6], "errors": ["", "", "", "HTTP 500"], "generated_texts": ["a", "b", "c", ""],
}  # fmt: skip


def test_a_vllm_result_as_a_record():
    r = vj.from_vllm(VLLM, "x.json", "run-1", 0, num_gpus=2)
    assert schema.check_record(json.loads(json.dumps(r))) is None
    assert (r["requests_completed"], r["requests_failed"], r["failure_rate"]) == (3, 1, 0.25)
    assert r["param_request_rate"] is None and r["param_max_concurrency"] == 2 and r["param_num_prompts"] == 4
    assert r["param_server_model"] == "meta-llama/Llama-3.1-8B-Instruct" and r["imported_from"] == "x.json"
    assert (r["ttft_mean_s"], r["ttft_median_s"], r["ttft_std_s"], r["ttft_p99_s"]) == pytest.approx(
        (0.12, 0.1, 0.03, 0.18))  # fmt: skip
    assert r["ttft_p90_s"] is None and r["latency_percentiles_s"] == pytest.approx(
        {"ttft_p95": 0.17, "tpot_p95": 0.025, "itl_p95": 0.022})  # fmt: skip
    assert r["per_user_tokens_per_s"] == pytest.approx(62.5)  # 1 / 16 ms
    assert r["output_tokens_per_s"] == 150.0 and r["output_tokens_per_s_per_gpu"] == 75.0
    assert r["good_requests"] == 2 and r["slo_attainment"] == pytest.approx(0.5)  # 1.0 req/s x 2 s; 2 / 4
    assert r["samples_s"] == [1.9, 1.8, 2.0]  # the failed request's 0 is left out
    assert r["energy_j"] is None and "measures no energy" in r["energy_reason"]
    local = datetime(2026, 1, 5, 10, 15).astimezone()  # vLLM's date is local time: read as this machine's zone
    assert r["started_at"] == local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert (r["hostname"], r["device_name"]) == ("vllm import", "meta-llama/Llama-3.1-8B-Instruct")


def test_older_files_without_failed_count_it_from_num_prompts():
    old = {k: v for k, v in VLLM.items() if k not in ("failed", "latencies")}
    r = vj.from_vllm(old, "x", "run", 0)
    assert r["requests_failed"] == 1 and "samples_s" not in r


def record() -> dict:
    """A tokenbench serve record (the fields the vLLM keys carry)."""
    r = {"run_id": "r", "seq": 0, "label": "rate 4/s, 128/32 random", "param_endpoint": "/v1/chat/completions",
         "param_request_rate": 4.0, "param_burstiness": 0.5, "param_max_concurrency": None, "param_num_prompts": 50,
         "param_server_model": "m", "started_at": "2026-02-03T04:05:06.000Z", "duration_s": 12.5,
         "requests_completed": 49, "requests_failed": 1, "input_tokens_total": 6272, "output_tokens_total": 1568,
         "request_throughput": 3.92, "goodput": 3.6, "output_throughput": 125.44, "total_token_throughput": 627.2,
         "max_concurrent_requests": 7, "latency_percentiles_s": {"ttft_p50": 0.05}}  # fmt: skip
    for i, m in enumerate(("ttft", "tpot", "itl", "e2el")):
        r.update({f"{m}_mean_s": 0.1 + i, f"{m}_median_s": 0.09 + i, f"{m}_std_s": 0.01 + i, f"{m}_p90_s": 0.2 + i,
                  f"{m}_p99_s": 0.3 + i})  # fmt: skip
    return r


def test_a_record_as_vllm_keys():
    v = vj.to_vllm(record())
    assert (v["date"], v["endpoint_type"], v["backend"], v["request_rate"], v["burstiness"]) == (
        "20260203-040506", "openai-chat", "openai-chat", 4.0, 0.5)  # fmt: skip
    assert (v["completed"], v["failed"], v["total_output_tokens"], v["request_goodput"]) == (49, 1, 1568, 3.6)
    assert (v["mean_ttft_ms"], v["p99_e2el_ms"], v["p50_ttft_ms"]) == pytest.approx((100.0, 3300.0, 50.0))
    assert "input_lens" not in v


def test_round_trip_record_vllm_record():
    r = record()
    back = vj.from_vllm(json.loads(vj.dumps(vj.to_vllm(r))), "f", "r", 0)
    for key in ("param_request_rate", "param_burstiness", "param_max_concurrency", "param_num_prompts",
                "param_endpoint", "param_server_model", "duration_s", "requests_completed", "requests_failed",
                "input_tokens_total", "output_tokens_total", "request_throughput", "goodput", "output_throughput",
                "total_token_throughput", "max_concurrent_requests"):  # fmt: skip
        assert back[key] == r[key], key
    for key in [k for k in r if k.endswith("_s") and k.split("_")[0] in ("ttft", "tpot", "itl", "e2el")]:
        assert back[key] == pytest.approx(r[key]), key
    assert back["latency_percentiles_s"] == pytest.approx(r["latency_percentiles_s"])


def test_detailed_lists_from_the_sidecar():
    lines: list[dict] = [
        {"index": 1, "ok": False, "error": "HTTP 429", "input_tokens": 5, "sent_s": 0.2, "ttft_s": None,
         "e2el_s": None, "chunk_times_s": []},
        {"index": 0, "ok": True, "error": None, "input_tokens": 4, "output_tokens": 3, "sent_s": 0.0, "ttft_s": 0.1,
         "e2el_s": 0.4, "chunk_times_s": [0.1, 0.25, 0.4]},
    ]  # fmt: skip
    v = vj.to_vllm(record(), lines)
    assert v["input_lens"] == [4, 5] and v["output_lens"] == [3, 0] and v["ttfts"] == [0.1, 0.0]
    assert v["itls"] == [pytest.approx([0.15, 0.15]), []] and v["latencies"] == [0.4, 0.0]
    assert v["errors"] == ["", "HTTP 429"] and v["start_times"] == [0.0, 0.2]


def test_import_writes_a_run_report_reads(tmp_path):
    src = tmp_path / "vllm.json"
    src.write_text(json.dumps(VLLM) + "\n" + json.dumps({**VLLM, "max_concurrency": 4}) + "\n")  # --append-result
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["serve", "--import-vllm", str(src), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "imported 2 load points" in res.output
    header = json.loads(next(out.glob("*.json")).read_text())
    assert schema.check_header(header) is None and header["imported_from"] == str(src)
    assert header["state"] == "complete" and header["n_records"] == 2
    rep = CliRunner().invoke(app, ["report", str(out)])
    assert rep.exit_code == 0, rep.output
    assert "serve" in rep.output


@pytest.mark.parametrize(
    ("text", "words"), [("{not json", "not vLLM result JSON"), ('{"completed": 1}', "has no duration"),
                        ("[1, 2]", "expected an object per result")],
)  # fmt: skip
def test_what_is_not_a_vllm_result_is_one_line(tmp_path, text, words):
    src = tmp_path / "bad.json"
    src.write_text(text)
    res = CliRunner().invoke(app, ["serve", "--import-vllm", str(src), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and words in res.output
    assert not list((tmp_path / "o").glob("*.jsonl"))
