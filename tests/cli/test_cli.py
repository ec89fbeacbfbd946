"""The command line as a user runs it: bad input, a real smoke run, a crash and a Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.device.base import cpu_device
from bench.results.reader import load

ROOT = Path(__file__).resolve().parents[2]


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["run", "--suite", "nosuch"], "unknown suite 'nosuch'"),
        (["run", "--workload", "nope"], "unknown workload 'nope'"),
        (["run", "--workload", "gemm:m=-3"], "gemm: m: Input should be greater than 0"),
        (["run", "--workload", "gemm:dtype=int3"], "gemm: dtype"),
        (["run", "--workload", "gemm:m"], "expected key=value"),
        (["run", "--device", "tpu"], "unknown device 'tpu'"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_runs_nothing(tmp_path, args, expect):
    result = invoke(*args, "--out", str(tmp_path))
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("tokenbench: error: ") and expect in lines[0]
    assert list(tmp_path.iterdir()) == []  # nothing run, nothing written


def test_malformed_suite_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[[bench]]\nworkload = 'gemm'\nparams = { m = 'big' }\n")
    result = invoke("run", "--suite", str(bad), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2 and "bench[0] (gemm): gemm: m:" in result.output
    assert not (tmp_path / "out").exists()


def test_list_shows_workloads_and_suites():
    result = invoke("list")
    assert result.exit_code == 0
    for word in ("gemm", "copy", "attention", "smoke", "node", "dtype='bf16'"):
        assert word in result.output


def test_list_json_holds_every_workload_with_its_defaults_and_every_suite():
    import workloads
    from bench.measure.suites import builtin_names

    result = invoke("list", "--format", "json")
    assert result.exit_code == 0, result.output
    listing = json.loads(result.output)
    assert [w["id"] for w in listing["workloads"]] == list(workloads.REGISTRY)
    gemm = next(w for w in listing["workloads"] if w["id"] == "gemm")
    assert gemm["family"] == "gemm" and gemm["parameters"]["dtype"] == "bf16"
    assert [s["name"] for s in listing["suites"]] == list(builtin_names())
    assert all(s["error"] is None and s["entries"] > 0 for s in listing["suites"])


HELP_COMMANDS = ["run", "accept", "cost", "report", "compare", "list", "env"]


def test_help_shows_catalog_tables_as_written_and_no_bool_metavar():
    shown = {cmd: CliRunner().invoke(app, [cmd, "--help"], terminal_width=200).output for cmd in HELP_COMMANDS}
    assert all(shown.values())
    for text in ("[[gpu]]", "[[offer]]", "[[server]]", "[sensitivity]"):
        assert text in shown["cost"], text
    assert "[[gpu]]" in shown["report"] and "<run-id>" in shown["run"]
    assert not [cmd for cmd, text in shown.items() if "<bool>" in text]


def test_env_json():
    result = invoke("env", "--json", "--device", "cpu")
    assert result.exit_code == 0
    info = json.loads(result.output)
    assert info["device_kind"] == "cpu" and "torch_version" in info


def test_run_writes_records_header_and_table(tmp_path):
    result = invoke(
        "run",
        "--workload",
        "gemm:m=64,n=64,k=64,dtype=fp32",
        "--workload",
        "gemm:dtype=tf32,m=16",
        "--out",
        str(tmp_path),
        "--no-progress",
        "--seed",
        "7",
        "--device",
        "cpu",
    )
    assert result.exit_code == 0, result.output
    assert "64x64x64 fp32" in result.output and "skipped: gemm 16x4096x4096 tf32" in result.output
    (header_path,) = tmp_path.glob("*.json")
    header = json.loads(header_path.read_text())
    assert header["state"] == "complete" and header["complete"] and header["seed"] == 7
    assert header["n_ok"] == 1 and header["n_skipped"] == 1 and header["suite"] == "smoke"
    assert header["environment"]["device_kind"] == "cpu"
    df = load(tmp_path)
    assert list(df["status"]) == ["ok", "skipped"] and df["run_complete"].all()


def test_failed_record_gives_exit_1(tmp_path, register):
    from tests.support.fakes import Fake

    register(Fake())
    result = invoke(
        "run", "-w", "fake:mode=wrong", "-w", "fake", "--out", str(tmp_path), "--no-progress", "--device", "cpu"
    )
    assert result.exit_code == 1
    assert list(load(tmp_path)["status"]) == ["failed", "ok"]


def test_run_with_nvml_telemetry_writes_energy_idle_health_and_timeline(tmp_path, register, monkeypatch):
    """The whole path with a scripted pynvml (a steady 300 W): idle baseline, energy per record,
    health before and after, the timeline file and the energy columns of the table."""
    from bench.device import nvml, telemetry
    from bench.measure import session as cli
    from tests.support.fakes import Fake
    from tests.support.scripted_nvml import HANDLE, ScriptedGpu, scripted_pynvml

    register(Fake())
    monkeypatch.setattr(nvml, "pynvml", scripted_pynvml(ScriptedGpu(clock=time.perf_counter)))
    nvml.init_error.cache_clear()
    monkeypatch.setattr(
        cli.tm, "for_device", lambda dev, min_window_s: telemetry.NvmlTelemetry(HANDLE, min_window_s=min_window_s)
    )
    args = ["--idle-s", "0.2", "--sample-ms", "10", "--energy-window-s", "0.2", "--timeline", "--no-progress"]
    result = invoke("run", "-w", "fake", "--out", str(tmp_path), "--device", "cpu", *args)
    nvml.init_error.cache_clear()
    assert result.exit_code == 0, result.output
    assert "idle baseline: " in result.output and "J/TFLOP" in result.output
    header = json.loads(next(tmp_path.glob("*Z-*.json")).read_text())
    assert header["idle"]["idle_power_w"] == pytest.approx(300.0, rel=5e-3)
    assert header["telemetry"]["power_reading"].startswith("instant") and header["telemetry"]["interval_s"] == 0.01
    assert header["health_before"]["ecc_uncorrected"] == 0 and header["health_change"] == "ok"
    rec = load(tmp_path).iloc[0]
    assert rec["energy_source"] == "nvml_energy_counter" and rec["power_mean_w"] == pytest.approx(300.0, rel=5e-3)
    assert rec["idle_power_w"] == pytest.approx(300.0, rel=5e-3) and rec["energy_window_s"] >= 0.2
    timeline = (tmp_path / header["timeline_file"]).read_text().splitlines()
    assert timeline[0].startswith("seq,t_s,in_window,power_w") and len(timeline) > 10
    assert {line.split(",")[2] for line in timeline[1:]} == {"True", "False"}


def test_uncorrected_ecc_growth_between_measurements_fails_the_run(tmp_path, register, monkeypatch):
    import pynvml

    from bench.device import nvml, telemetry
    from bench.measure import session as cli
    from tests.support.fakes import Fake
    from tests.support.scripted_nvml import HANDLE, ScriptedGpu, scripted_pynvml

    register(Fake())
    fake = scripted_pynvml(ScriptedGpu(clock=time.perf_counter))
    reads = []

    def ecc(handle, error_type, counter_type):  # run start, record start, record end: 0; run end: 1
        if error_type != pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED:
            return 0
        reads.append(1)
        return 1 if len(reads) >= 4 else 0

    fake.nvmlDeviceGetTotalEccErrors.side_effect = ecc
    monkeypatch.setattr(nvml, "pynvml", fake)
    nvml.init_error.cache_clear()
    monkeypatch.setattr(cli.tm, "for_device", lambda dev, min_window_s: telemetry.NvmlTelemetry(HANDLE, 0.0))
    result = invoke("run", "-w", "fake", "--out", str(tmp_path), "--device", "cpu", "--idle-s", "0", "--no-progress")
    nvml.init_error.cache_clear()
    assert result.exit_code == 1, result.output
    assert "tokenbench: error: card health changed during the run: ecc_uncorrected +1" in result.output
    assert list(load(tmp_path)["status"]) == ["ok"]  # the measurement itself was clean
    header = json.loads(next(tmp_path.glob("*Z-*.json")).read_text())
    assert header["health_change"] == "fail" and header["health_after"]["ecc_uncorrected"] == 1


def test_timeline_without_telemetry_warns_and_writes_none(tmp_path):
    result = invoke("run", "-w", "gemm:m=8,n=8,k=8,dtype=fp32", "--out", str(tmp_path), "--timeline", "--no-progress")
    assert result.exit_code == 0 and "--timeline: nothing to sample" in result.output
    assert not list(tmp_path.glob("*.timeline.csv"))
    header = json.loads(next(tmp_path.glob("*Z-*.json")).read_text())
    assert header["telemetry"]["telemetry_source"] == "none" and "idle_reason" in header["idle"]


# --- crash safety, through a real process ------------------------------------------------------

DRIVER = """
import sys
import workloads
from tests.support.fakes import Fake
workloads.REGISTRY["fake"] = Fake()
from bench.cli import main
sys.argv = ["tokenbench", *sys.argv[1:]]
main()
"""


def spawn(tmp_path: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            DRIVER,
            "run",
            "--out",
            str(tmp_path / "out"),
            "--no-progress",
            "--device",
            "cpu",
            *args,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def spawned():
    """Start tokenbench in a child process; the child never outlives the test."""
    children: list[subprocess.Popen] = []

    def start(tmp_path: Path, *args: str) -> subprocess.Popen:
        children.append(spawn(tmp_path, *args))
        return children[-1]

    yield start
    for child in children:
        if child.poll() is None:
            child.kill()
            child.wait()


@pytest.mark.slow
def test_crash_mid_suite_keeps_earlier_records(tmp_path, spawned):
    proc = spawned(tmp_path, "-w", "fake", "-w", "fake:work=7", "-w", "fake:mode=kill", "-w", "fake")
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    df = load(tmp_path / "out")
    assert list(df["seq"]) == [0, 1] and list(df["status"]) == ["ok", "ok"]
    assert list(df["run_state"]) == ["running", "running"] and not df["run_complete"].any()


@pytest.mark.slow
def test_ctrl_c_keeps_records_and_marks_the_run_interrupted(tmp_path, spawned):
    proc = spawned(tmp_path, "-w", "fake", *(["-w", "fake:mode=sleep"] * 200))
    records = tmp_path / "out"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until some records are on disk, then interrupt
        files = list(records.glob("*.jsonl")) if records.exists() else []
        if files and len(files[0].read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output
    assert re.search(r"interrupted: \d+ finished records? kept", output), output
    (header,) = records.glob("*.json")
    meta = json.loads(header.read_text())
    assert meta["state"] == "interrupted" and meta["complete"] is False
    df = load(records)
    assert 2 <= len(df) < 201 and (df["status"] == "ok").all()
    assert meta["n_records"] == len(df)


def test_unusable_gpu_warning_is_printed(tmp_path, monkeypatch):
    from bench.device import base

    def detect_with_note(requested=None):
        dev = cpu_device()
        dev.notes.append("GPU present but unusable: test")
        return dev

    monkeypatch.setattr(base, "detect", detect_with_note)
    result = invoke("run", "-w", "gemm:m=8,n=8,k=8,dtype=fp32", "--out", str(tmp_path), "--no-progress")
    assert result.exit_code == 0, result.output
    assert "tokenbench: warning: GPU present but unusable: test" in result.output


TINY = (
    "[timer]\nwarmup_s = 0\nmin_time_s = 0\nmin_reps = 2\nmax_reps = 2\n"
    '[[bench]]\nworkload = "gemm"\nparams = { m = 8, n = 8, k = 8 }\nsweep = { dtype = ["fp32", "bf16", "tf32"] }\n'
)


def test_header_plans_every_entry(tmp_path):
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY)
    result = invoke("run", "--suite", str(suite), "--out", str(tmp_path / "o"), "--no-progress", "--device", "cpu")
    assert result.exit_code == 0, result.output
    (h,) = (tmp_path / "o").glob("*.json")
    header = json.loads(h.read_text())
    assert header["n_planned"] == 3 == header["n_records"] and header["suite"] == "tiny"


def test_harness_crash_marks_the_header_crashed(tmp_path, monkeypatch):
    from bench.measure.runner import Runner

    def boom(self, entries):
        raise RuntimeError("harness bug")

    monkeypatch.setattr(Runner, "run", boom)
    result = invoke(
        "run", "-w", "gemm:m=8,n=8,k=8,dtype=fp32", "--out", str(tmp_path), "--no-progress", "--device", "cpu"
    )
    assert isinstance(result.exception, RuntimeError)
    (h,) = tmp_path.glob("*.json")
    meta = json.loads(h.read_text())
    assert meta["state"] == "crashed" and meta["complete"] is False
    assert meta["error"] == "RuntimeError: harness bug"
