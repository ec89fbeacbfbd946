"""`tokenbench serve` end to end against the stub server: one point, sweeps, the SLO search, faults, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.results import schema

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--random-input-len", "8", "--random-output-len", "4"]


def serve(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, ["serve", *args])
    return res.exit_code, res.output


def run_files(out: Path) -> tuple[dict, list[dict], list[dict]]:
    """(header, records, request lines) of the one run in `out`."""
    header_path = next(p for p in out.glob("*.json") if not p.name.endswith(".vllm.json"))
    header = json.loads(header_path.read_text())
    records = [json.loads(x) for x in header_path.with_suffix(".jsonl").read_text().splitlines()]
    requests = [json.loads(x) for x in (out / header["requests_file"]).read_text().splitlines()]
    return header, records, requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_is_one_line_exit_2_nothing_written(tmp_path):
    out = tmp_path / "out"
    code, text = serve("--base-url", f"http://127.0.0.1:{free_port()}", "--ready-check-timeout-sec", "0.5",
                       "--out", str(out))  # fmt: skip
    assert code == 2 and text.count("\n") == 1 and text.startswith("tokenbench: error:")
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "words"),
    [(["--slo-search", "rate", "--slo-search-high", "4"], "--slo-search needs an SLO"),
     (["--scenario", "1k-2k"], "unknown scenario '1k-2k'; did you mean"),
     (["--slo-preset", "llama-3.1-8b"], "did you mean 'llama3.1-8b'"),
     (["--rate-sweep", "1,2", "--concurrency-sweep", "4"], "give one of"),
     (["--goodput", "ttft:x"], "--goodput 'ttft:x'"),
     (["--percentile-metrics", "ttft,foo"], "--percentile-metrics 'foo'"),
     (["--dataset-name", "sharegpt"], "needs --dataset-path"),
     ([], "--base-url: give the server's URL")],
)  # fmt: skip
def test_bad_flags_exit_2_before_anything_is_sent(tmp_path, args, words):
    base = [] if args == [] else ["--base-url", "http://127.0.0.1:9"]
    code, text = serve(*base, *args, "--out", str(tmp_path / "o"))
    assert code == 2 and words in text and text.count("\n") == 1, text
    assert not (tmp_path / "o").exists()


def test_one_load_point(stub, tmp_path):
    server = stub(ttft_s=0.01, itl_s=0.002, output_len=4)
    out = tmp_path / "out"
    code, text = serve("--base-url", server.base_url, "--num-prompts", "12", "--request-rate", "100",
                       "--num-warmups", "2", "--goodput", "ttft:5000 tpot:5000", *SMALL, "--out", str(out),
                       "--save-result", "--save-detailed")  # fmt: skip
    assert code == 0, text
    assert "Serving Benchmark Result" in text and "Mean TTFT (ms):" in text
    assert "load point: rate 100/s, 8/4 random" not in text and "best load point meeting the SLO" in text
    header, records, requests = run_files(out)
    assert header["state"] == "complete" and header["serve"]["server_model"] == "stub-model"
    assert header["serve"]["models"]["data"][0]["id"] == "stub-model" and header["serve"]["base_url"] == server.base_url
    assert len(server.requests) == 14  # 2 warm-ups, then the 12 measured
    (r,) = records
    assert schema.check_record(r) is None and r["status"] == "ok" and r["num_warmups"] == 2
    assert (r["requests_completed"], r["output_tokens_total"], r["output_tokens_source"]) == (12, 48, "usage")
    assert r["param_request_rate"] == 100.0 and r["slo_met"] is True and r["good_requests"] == 12
    assert len(requests) == 12 and {x["seq"] for x in requests} == {0} and all(x["ok"] for x in requests)
    assert all(x["ttft_s"] <= x["e2el_s"] for x in requests)
    vllm = json.loads(next(out.glob("*.vllm.json")).read_text())
    assert vllm["completed"] == 12 and vllm["request_rate"] == 100.0 and len(vllm["ttfts"]) == 12


def test_concurrency_sweep_end_to_end(stub, tmp_path):
    server = stub(ttft_s=0.005, itl_s=0.001, output_len=4)
    code, text = serve("--base-url", server.base_url, "--num-prompts", "8", "--concurrency-sweep", "4", *SMALL,
                       "--out", str(tmp_path))  # fmt: skip
    assert code == 0, text
    _, records, requests = run_files(tmp_path)
    assert [r["param_max_concurrency"] for r in records] == [1, 2, 4]
    assert [r["label"] for r in records] == [f"conc {c}, 8/4 random" for c in (1, 2, 4)]
    assert all(r["param_request_rate"] is None and r["sweep"] == "concurrency" for r in records)
    assert all(r["max_concurrent_requests"] <= r["param_max_concurrency"] for r in records)
    assert [r["seq"] for r in records] == [0, 1, 2] and len(requests) == 24
    assert "tokenbench serve: load points" in text and "highest throughput: conc" in text


def test_slo_search_end_to_end(stub, tmp_path):
    # The server takes 2 requests at once, each 0.2 s to its first token. Under a cap of c <= 2 nothing
    # waits (TTFT 0.2 s, 190 ms under the 0.39 s SLO: room for a busy host); with c >= 3 a third request
    # waits for a slot, so its TTFT is at least 0.4 s whatever the host does: attainment < 99%.
    # Search 1..8: 1 met, 8 missed, 4 missed, 2 met, 3 missed: best 2.
    server = stub(ttft_s=0.2, itl_s=0.001, output_len=2, max_concurrency=2)
    code, text = serve("--base-url", server.base_url, "--num-prompts", "6", "--slo-search", "concurrency",
                       "--slo-search-low", "1", "--slo-search-high", "8", "--goodput", "ttft:390",
                       "--random-input-len", "4", "--random-output-len", "2", "--out", str(tmp_path))  # fmt: skip
    assert code == 0, text
    header, records, _ = run_files(tmp_path)
    assert [r["param_max_concurrency"] for r in records] == [1, 8, 4, 2, 3]
    assert [r["slo_met"] for r in records] == [True, False, False, True, False]
    assert header["slo_search"]["best"] == 2 and header["slo_search"]["reason"] == "the interval is closed"
    assert "best load point meeting the SLO: conc 2" in text


def test_a_failing_server_records_failed_points_and_goes_on(stub, tmp_path):
    server = stub(output_len=2, fail_every=2)  # every second request gets 429
    code, text = serve("--base-url", server.base_url, "--num-prompts", "6", "--rate-sweep", "50,100", *SMALL,
                       "--out", str(tmp_path))  # fmt: skip
    assert code == 1, text  # no load point is ok
    _, records, requests = run_files(tmp_path)
    assert [r["status"] for r in records] == ["failed", "failed"] and len(records) == 2
    assert records[0]["requests_failed"] == 3 and "3 of 6 requests failed (50.0%" in records[0]["reason"]
    assert sum(not x["ok"] for x in requests) == 6 and all("429" in x["error"] for x in requests if not x["ok"])


def test_ctrl_c_stops_the_point_keeps_the_finished_and_exits_130(stub, tmp_path):
    server = stub(ttft_s=0.05, itl_s=0.05, output_len=20)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "bench", "serve", "--base-url", server.base_url, "--num-prompts",
                             "200", "--request-rate", "20", *SMALL, "--out", str(tmp_path)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
            p.stat().st_size for p in tmp_path.glob("*.requests.jsonl")
        ):  # the first request has finished
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    header, records, requests = run_files(tmp_path)
    assert header["state"] == "interrupted" and header["n_records"] == 1
    (r,) = records
    assert r["status"] == "failed" and r["reason"].startswith("interrupted by the user")
    assert r["requests_completed"] >= 1 and len(requests) == r["requests_completed"] + r["requests_failed"] < 200
    assert "tokenbench: interrupted: 1 load point kept" in stderr


def test_report_compare_and_cost_accept_serve_records(stub, tmp_path):
    server = stub(ttft_s=0.005, itl_s=0.001, output_len=4)
    for name in ("a", "b"):
        code, text = serve("--base-url", server.base_url, "--num-prompts", "10", "--max-concurrency", "2", *SMALL,
                           "--out", str(tmp_path / name))  # fmt: skip
        assert code == 0, text
    runner = CliRunner()
    # the records files by name: a folder also holds the requests sidecar (<run-id>.requests.jsonl), which the
    # results reader must learn to pass over before `report DIR` reads a serve run's folder
    a, b = (next((tmp_path / n).glob("*Z-*[0-9a-f].jsonl")) for n in ("a", "b"))
    rep = runner.invoke(app, ["report", str(a)])
    assert rep.exit_code == 0, rep.output
    assert "conc 2, 8/4 random" in rep.output
    cmp = runner.invoke(app, ["compare", str(a), str(b)])
    assert cmp.exit_code in (0, 1), cmp.output  # a verdict either way, never bad input
    cost = runner.invoke(app, ["cost", str(a), "--gpu", "H100-SXM"])
    assert cost.exit_code == 0, cost.output
    assert "conc 2, 8/4 random" in cost.output


def test_chat_endpoint_scenario_and_preset(stub, tmp_path):
    server = stub(output_len=2)
    code, text = serve("--base-url", server.base_url, "--endpoint", "/v1/chat/completions", "--num-prompts", "3",
                       "--request-rate", "inf", "--scenario", "1k-1k", "--slo-preset", "llama3.1-8b",
                       "--metric-percentiles", "50,99", "--out", str(tmp_path))  # fmt: skip
    assert code == 0, text
    header, (r,), _ = run_files(tmp_path)
    assert server.requests[0].path == "/v1/chat/completions" and r["param_endpoint"] == "/v1/chat/completions"
    assert (r["param_input_len"], r["param_output_len"], r["param_range_ratio"]) == (1024, 1024, 0.8)
    assert (r["scenario"], r["slo_preset"], r["slo_ttft_s"], r["slo_tpot_s"]) == ("1k-1k", "llama3.1-8b", 2.0, 0.1)
    assert "MLPerf Inference" in header["slo_source"] and r["label"] == "rate inf/s, 1024/1024 random"
    assert set(r["latency_percentiles_s"]) == {"ttft_p50", "tpot_p50", "itl_p50", "e2el_p50"}  # queue: only under a cap
