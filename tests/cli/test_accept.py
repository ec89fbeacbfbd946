"""`tokenbench accept` end to end on the CPU: a verdict with reasons, and planted faults that fail it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.results.reader import read_runs

ROOT = Path(__file__).resolve().parents[2]
FAST = ["--device", "cpu", "--idle-s", "0", "--no-progress"]
TINY_GEMM = """
[timer]
warmup_s = 0
min_time_s = 0.05
min_reps = 3
max_reps = 50
[[bench]]
workload = "gemm"
params = { m = 64, n = 64, k = 64, dtype = "fp32" }
"""


def accept(tmp_path: Path, *args: str):
    return CliRunner().invoke(app, ["accept", *FAST, "--out", str(tmp_path / "out"), *args])


def header(tmp_path: Path) -> dict:
    (path,) = (tmp_path / "out").glob("*.json")
    return json.loads(path.read_text())


def test_quick_on_the_cpu_passes_with_what_it_could_not_judge(tmp_path):
    result = accept(tmp_path)
    assert result.exit_code == 0, result.output
    assert "tokenbench accept (quick: accept-cpu)" in result.output
    assert "no vendor peak for" in result.output  # the CPU has no peak to hold it to: N/A, said why
    acceptance = header(tmp_path)["acceptance"]
    assert acceptance["verdict"] == "PASS" and acceptance["profile"] == "quick"
    (node,) = acceptance["nodes"]
    assert f"node {node['node']}: PASS (1 of 1 GPU pass)" in result.output
    rules = {f["rule"]: f["verdict"] for f in node["gpus"][0]["findings"]}
    assert rules["checks"] == "PASS" and rules["gemm"] == rules["bandwidth"] == "N/A"


def test_a_wrong_gemm_fails_the_node(tmp_path):
    suite = tmp_path / "wrong.toml"
    suite.write_text(TINY_GEMM + '\n[[bench]]\nworkload = "gemm"\nparams = { m = 64, n = 64, k = 64, dtype = "fp32",'
                     " corrupt = true }\n")  # fmt: skip
    result = accept(tmp_path, "--suite", str(suite))
    assert result.exit_code == 1, result.output
    assert "output check failed" in result.output and "64x64x64 fp32 corrupt" in result.output
    assert header(tmp_path)["acceptance"]["verdict"] == "FAIL"
    (run,) = read_runs(tmp_path / "out")
    assert [r["status"] for r in run.records] == ["ok", "failed"]  # the good one measured and kept


def test_a_clock_event_from_the_card_fails_it(tmp_path, monkeypatch):
    from bench.device import nvml, telemetry
    from tests.support.scripted_nvml import HANDLE, ScriptedGpu, scripted_pynvml

    hot = ScriptedGpu(clock=time.perf_counter, reasons=lambda t: 0x40 | 0x4)  # hw thermal slowdown, power cap
    monkeypatch.setattr(nvml, "pynvml", scripted_pynvml(hot))
    nvml.init_error.cache_clear()
    monkeypatch.setattr(
        telemetry, "for_device", lambda dev, min_window_s: telemetry.NvmlTelemetry(HANDLE, min_window_s=0.3)
    )
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY_GEMM)
    result = accept(tmp_path, "--suite", str(suite))
    nvml.init_error.cache_clear()
    assert result.exit_code == 1, result.output
    assert "hw_thermal_slowdown in up to 100.0% of a window" in result.output
    assert "sw_power_cap" not in header(tmp_path)["acceptance"]["nodes"][0]["gpus"][0]["findings"][1]["detail"]


def test_a_cpu_soak_records_its_intervals(tmp_path):
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY_GEMM)
    result = accept(tmp_path, "--profile", "full", "--suite", str(suite), "--soak-s", "1", "--soak-interval-s", "0.25")
    assert result.exit_code == 0, result.output
    (run,) = read_runs(tmp_path / "out")
    soak = [r for r in run.records if r.get("phase") == "soak"]
    assert [r["soak_interval"] for r in soak] == [0, 1, 2, 3] and all(r["status"] == "ok" for r in soak)
    assert soak[0]["label"] == "256x256x256 fp32 soak 1/4" and soak[0]["soak_interval_s"] == 0.25
    assert "reported, not judged" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--profile", "fast"], "tokenbench: error: --profile: unknown profile 'fast'; known: quick, full"),
        (["--thresholds", "/nonexistent.toml"], "tokenbench: error: --thresholds /nonexistent.toml: cannot read"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    result = accept(tmp_path, *args)
    assert result.exit_code == 2 and result.output.startswith(message) and result.output.count("\n") == 1
    assert not (tmp_path / "out").exists()  # nothing measured


def test_a_bad_thresholds_field_is_named(tmp_path):
    bad = tmp_path / "th.toml"
    bad.write_text("[soak]\nmin_steady_over_first = -1\n")
    result = accept(tmp_path, "--thresholds", str(bad))
    assert result.exit_code == 2
    assert "soak.min_steady_over_first: Input should be greater than 0" in result.output


@pytest.mark.slow
def test_a_corrupted_collective_rank_fails_the_node(tmp_path):
    suite = tmp_path / "coll.toml"
    suite.write_text('[timer]\nwarmup_s = 0\nmin_time_s = 0.05\nmin_reps = 3\n[[bench]]\nworkload = "all_reduce"\n'
                     "params = { size_kib = 64, corrupt_rank = 1 }\n")  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "bench", "accept", *FAST, "--nproc", "2", "--suite", str(suite),
                           "--out", str(tmp_path / "out"), "--dist-timeout-s", "60"],
                          capture_output=True, text=True, timeout=180, cwd=ROOT)  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "node " in proc.stdout and ": FAIL (1 of 2 GPUs pass; failing: rank 1)" in proc.stdout
    gpus = {g["gpu"]: g for g in header(tmp_path)["acceptance"]["nodes"][0]["gpus"]}
    checks = {gpu: next(f for f in g["findings"] if f["rule"] == "checks") for gpu, g in gpus.items()}
    assert checks["rank 0"]["verdict"] == "PASS" and checks["rank 1"]["verdict"] == "FAIL"
    assert "1 of 16384 values wrong on rank 1 of 2" in checks["rank 1"]["detail"]


@pytest.mark.slow
def test_ctrl_c_during_a_soak_keeps_every_finished_interval(tmp_path):
    out = tmp_path / "out"
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY_GEMM)
    proc = subprocess.Popen([sys.executable, "-m", "bench", "accept", *FAST, "--profile", "full", "--suite",
                             str(suite), "--soak-s", "60", "--soak-interval-s", "0.3", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait for two finished soak intervals on disk
            lines = [json.loads(x) for f in out.glob("*.jsonl") for x in f.read_text().splitlines() if x]
            if sum(r.get("phase") == "soak" for r in lines) >= 2:
                break
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    (run,) = read_runs(out)
    soak = [r for r in run.records if r.get("phase") == "soak"]
    assert run.state == "interrupted" and len(soak) >= 2
    assert [r["soak_interval"] for r in soak] == list(range(len(soak)))


def test_a_thresholds_fifo_is_refused_unread(tmp_path):
    fifo = tmp_path / "th.toml"
    os.mkfifo(fifo)  # opening it for reading would block forever
    result = accept(tmp_path, "--thresholds", str(fifo))
    assert result.exit_code == 2 and "cannot read (a FIFO, not a regular file)" in result.output
