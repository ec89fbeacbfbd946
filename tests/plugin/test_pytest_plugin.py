"""The pytest plugin end to end: inner pytest sessions in subprocesses, as a user's CI runs them.

The fixture's figures land in extra_info and machine_info, a suite runs as tests, pytest-benchmark's
own compare gate fails a real regression, and tokenbench report / compare read the JSON files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.results.reader import ResultsError, read_runs

ROOT = Path(__file__).resolve().parents[2]

USER_TESTS = """
import os

def test_gemm(tokenbench):
    size = int(os.environ.get("GEMM_SIZE", "128"))
    record = tokenbench("gemm", m=size, n=size, k=size, dtype="fp32")
    assert record["check_passed"]

def test_fp8_is_skipped_on_the_cpu(tokenbench):
    tokenbench("gemm", m=64, n=64, k=64, dtype="fp8")

def test_train(tokenbench):
    tokenbench("train", model="tiny", batch=2, seq_len=32)

def test_plain_python(benchmark):
    benchmark(sum, range(1000))

def test_twice(tokenbench):
    tokenbench("gemm", m=16, n=16, k=16, dtype="fp32")
    tokenbench("gemm", m=32, n=32, k=32, dtype="fp32")
"""

SUITE = """
description = "two entries"
[timer]
warmup_s = 0.05
[[bench]]
workload = "gemm"
params = { m = 64, n = 64, k = 64, dtype = "fp32" }
sweep = { dtype = ["fp32", "fp8"] }
"""

BASE = [
    "--tokenbench-device",
    "cpu",
    "--tokenbench-warmup-s",
    "0.05",
    "--tokenbench-idle-s",
    "0.2",
    "-p",
    "no:cacheprovider",
    "-q",
]
FAST = [*BASE, "--benchmark-max-time", "0.2", "--benchmark-min-rounds", "5"]


def inner_pytest(
    where: Path, *args: str, env: dict | None = None, options: list[str] = FAST
) -> subprocess.CompletedProcess:
    """A user's own pytest run in `where`, with tokenbench installed (the plugin loads by entry point)."""
    return subprocess.run([sys.executable, "-m", "pytest", *options, *args], cwd=where, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)  # fmt: skip


@pytest.fixture(scope="module")
def session_json(tmp_path_factory) -> tuple[subprocess.CompletedProcess, dict, Path]:
    where = tmp_path_factory.mktemp("user")
    (where / "test_user.py").write_text(USER_TESTS)
    proc = inner_pytest(where, "test_user.py", "--benchmark-json", "out.json", "-k", "not twice")
    return proc, json.loads((where / "out.json").read_text()), where / "out.json"


@pytest.mark.slow
def test_the_fixture_runs_workloads_and_skips_with_the_reason(session_json):
    proc, _, _ = session_json
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 passed, 1 skipped" in proc.stdout
    # the skip reason is the record's own, in pytest's summary
    skipped = inner_pytest(Path(session_json[2]).parent, "test_user.py", "-k", "fp8", "-rs")
    assert "SKIPPED" in skipped.stdout and "tokenbench: fp8" in skipped.stdout


@pytest.mark.slow
def test_figures_go_to_extra_info_and_versions_to_machine_info(session_json):
    _, data, _ = session_json
    bench = {b["name"]: b for b in data["benchmarks"]}
    assert set(bench) == {"test_gemm", "test_train", "test_plain_python"}
    gemm = bench["test_gemm"]
    extra = gemm["extra_info"]
    median = gemm["stats"]["median"]
    assert extra["workload"] == "gemm" and extra["label"] == "128x128x128 fp32" and extra["check_passed"]
    # the record's TFLOP/s is on pytest-benchmark's own median: 2 m n k / median
    assert extra["tflops"] == pytest.approx(2 * 128**3 / median / 1e12)
    record = extra["tokenbench"]
    assert record["time_median_s"] == pytest.approx(median) and record["n_samples"] == gemm["stats"]["rounds"]
    assert record["timer"] == "pytest-benchmark rounds of one call, device synchronised at both edges"
    # rounds of one call, nothing else in the energy window: every call in it is a timed one
    assert gemm["stats"]["iterations"] == 1 and record["energy_window_calls"] == gemm["stats"]["rounds"] >= 5
    train = bench["test_train"]["extra_info"]
    assert train["tokens_per_s"] == pytest.approx(2 * 32 / bench["test_train"]["stats"]["median"])
    machine = data["machine_info"]["tokenbench"]
    assert machine["torch_version"].startswith("2.") and machine["gpus"] == [] and machine["cuda_version"] is None
    assert set(machine) == {"tokenbench_version", "torch_version", "cuda_version", "driver_version", "gpus"}
    assert extra["device_name"] and "gpu_uuid" in record  # which device each benchmark ran on


@pytest.mark.slow
def test_plugin_records_carry_the_run_session_fields_of_tokenbench_run(session_json, tmp_path):
    """The plugin measures through the same run session as `tokenbench run`: the same record fields
    (idle baseline, energy above idle, CPU energy, health per measurement), each with its reason."""
    _, data, _ = session_json
    plugin = {b["name"]: b for b in data["benchmarks"]}["test_gemm"]["extra_info"]["tokenbench"]
    result = CliRunner().invoke(app, ["run", "-w", "gemm:m=128,n=128,k=128,dtype=fp32", "--device", "cpu",
                                      "--idle-s", "0.2", "--no-progress", "--out", str(tmp_path)])  # fmt: skip
    assert result.exit_code == 0, result.output
    (run,) = read_runs(tmp_path)
    cli = run.records[0]
    session_fields = {"idle_power_w", "energy_above_idle_j", "cpu_energy_j", "cpu_power_mean_w", "cpu_energy_reason",
                      "health_change", "health_detail", "energy_reason"}  # fmt: skip
    assert session_fields <= set(cli) and session_fields <= set(plugin)
    assert set(cli) - {"run_state", "run_complete"} == set(plugin)
    # with no RAPL and no NVML each null says why, as in `tokenbench run`
    for key in ("cpu_energy_reason", "energy_reason"):
        assert (plugin[key] is None) == (cli[key] is None)


SCRIPTED_GPU = """
import time

from bench.device import nvml, telemetry
from tests.support.scripted_nvml import HANDLE, ScriptedGpu, scripted_pynvml

# a card that draws a steady 300 W, at idle and under load, seen through a scripted pynvml
nvml.pynvml = scripted_pynvml(ScriptedGpu(clock=time.perf_counter))
nvml.init_error.cache_clear()
telemetry.for_device = lambda dev, min_window_s: telemetry.NvmlTelemetry(HANDLE, min_window_s=min_window_s)
"""


@pytest.mark.slow
def test_plugin_records_have_the_idle_baseline_and_health_of_the_run_session(tmp_path):
    """With a (scripted) GPU: the idle baseline is measured before the first test and every record
    carries it, with the energy above idle and the card's health change, as `tokenbench run` records do."""
    (tmp_path / "conftest.py").write_text(SCRIPTED_GPU)
    (tmp_path / "test_user.py").write_text(USER_TESTS)
    proc = inner_pytest(tmp_path, "test_user.py", "-k", "test_gemm", "--benchmark-json", "out.json",
                        env={"PYTHONPATH": str(ROOT)})  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (bench,) = json.loads((tmp_path / "out.json").read_text())["benchmarks"]
    record = bench["extra_info"]["tokenbench"]
    assert record["idle_power_w"] == pytest.approx(300.0, rel=5e-3)
    assert record["power_mean_w"] == pytest.approx(300.0, rel=5e-3)
    # a steady draw: the energy above idle is what 300 W minus 300 W leaves, against 300 W x the window
    assert abs(record["energy_above_idle_j"]) < 0.01 * record["energy_j"]
    assert record["health_change"] == "ok"


@pytest.mark.slow
def test_a_suite_runs_as_tests(tmp_path):
    (tmp_path / "two.toml").write_text(SUITE)
    proc = inner_pytest(tmp_path, "--tokenbench-suite", str(tmp_path / "two.toml"), "-rs", "--benchmark-json", "s.json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed, 1 skipped" in proc.stdout
    (b,) = json.loads((tmp_path / "s.json").read_text())["benchmarks"]
    assert b["name"] == "test_suite_entry[two:gemm 64x64x64 fp32]" and b["extra_info"]["workload"] == "gemm"
    assert b["params"] == {"tokenbench_entry": "two:gemm 64x64x64 fp32"}  # the same text in every run
    assert b["stats"]["rounds"] >= 5  # the suite's min_reps, and --benchmark-min-rounds
    bad = inner_pytest(tmp_path, "--tokenbench-suite", "no-such-suite")
    assert bad.returncode == 4 and "--tokenbench-suite no-such-suite:" in bad.stderr  # a usage error, at once


@pytest.mark.slow
def test_pytest_benchmark_compare_fail_gates_a_real_regression(tmp_path):
    (tmp_path / "test_user.py").write_text(USER_TESTS)
    store = ["--benchmark-storage", f"file://{tmp_path / 'store'}", "-k", "gemm and not fp8"]
    # One intra-op thread: on a busy host, threads spinning for a core inflate a tiny and a large
    # GEMM alike (both about 24 ms at a load of 5), which would hide the regression below.
    one_thread = {"OMP_NUM_THREADS": "1"}
    first = inner_pytest(
        tmp_path, "test_user.py", *store, "--benchmark-autosave", env={"GEMM_SIZE": "32", **one_thread}
    )
    assert first.returncode == 0, first.stdout + first.stderr
    # the same test, now on a GEMM 4096 times the work: far more than 50% slower
    second = inner_pytest(tmp_path, "test_user.py", *store, "--benchmark-compare", "--benchmark-compare-fail",
                          "median:50%", env={"GEMM_SIZE": "512", **one_thread})  # fmt: skip
    assert second.returncode != 0 and "Performance has regressed" in second.stdout + second.stderr
    assert "machine_info is different" not in second.stdout + second.stderr  # the same machine, read the same way
    saved = list((tmp_path / "store").rglob("*.json"))
    assert len(saved) == 1
    runs = read_runs(tmp_path / "store")  # tokenbench reads pytest-benchmark's autosave folder too
    assert [r["label"] for r in runs[0].records] == ["32x32x32 fp32"]


@pytest.mark.slow
def test_report_and_compare_read_pytest_benchmark_files(session_json, tmp_path):
    _, data, path = session_json
    result = CliRunner().invoke(app, ["report", str(path), "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = result.output.splitlines()[1:]
    families = {row.split(",")[0] for row in rows}
    assert families == {"gemm", "llm", "pytest-benchmark"}  # tokenbench records and a plain benchmark
    # the same file against itself: every configuration compared, no change (WARN where CV is high)
    same = tmp_path / "again.json"
    same.write_text(json.dumps(data))
    result = CliRunner().invoke(app, ["compare", str(path), str(same), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["comparisons"]
    assert {(r["workload"], r["config"]) for r in rows} == {
        ("gemm", "128x128x128 fp32"), ("train", "tiny b2 s32"), ("test_user.py::test_plain_python", "test_plain_python")
    }  # fmt: skip
    assert all(r["change"] == 0.0 and r["verdict"] in ("PASS", "WARN") for r in rows)


def test_a_plain_benchmark_becomes_a_record_with_its_samples(tmp_path):
    path = tmp_path / "pb.json"
    bench = {"name": "test_sum[10]", "fullname": "tests/test_x.py::test_sum[10]", "params": {"n": 10},
             "stats": {"min": 1e-6, "max": 3e-6, "mean": 2e-6, "median": 2e-6, "stddev": 1e-6, "rounds": 3,
                       "iterations": 10, "data": [1e-6, 2e-6, 3e-6]}, "extra_info": {}}  # fmt: skip
    path.write_text(json.dumps({"machine_info": {"node": "ci-1"}, "benchmarks": [bench], "datetime": "2026-11-23"}))
    (run,) = read_runs(path)
    (r,) = run.records
    assert (r["workload"], r["label"], r["family"], r["param_n"]) == ("tests/test_x.py::test_sum", "test_sum[10]",
                                                                      "pytest-benchmark", 10)  # fmt: skip
    assert r["samples_s"] == [1e-6, 2e-6, 3e-6] and r["time_median_s"] == 2e-6 and r["time_cv"] == 0.5
    assert r["hostname"] == "ci-1" and run.header["suite"] == "pytest-benchmark"


def test_a_malformed_pytest_benchmark_file_names_the_file_and_field(tmp_path):
    path = tmp_path / "pb.json"
    path.write_text(json.dumps({"machine_info": {}, "benchmarks": [{"name": "x", "fullname": "x", "stats": {}}]}))
    with pytest.raises(ResultsError, match=r"pb\.json: not a pytest-benchmark file: benchmarks\.0\.stats\.min"):
        read_runs(path)
    other = tmp_path / "other.json"
    other.write_text("{}")
    with pytest.raises(ResultsError, match="a run header without its records file"):
        read_runs(other)


def test_a_hostile_embedded_record_is_refused(tmp_path):
    path = tmp_path / "pb.json"
    bench = {
        "name": "x",
        "fullname": "x",
        "stats": {"min": 1, "max": 1, "mean": 1, "median": 1, "rounds": 1},
        "extra_info": {"tokenbench": {"schema_version": 1, "workload": "gemm", "status": "ok", "tflops": "9"}},
    }
    path.write_text(json.dumps({"machine_info": {}, "benchmarks": [bench]}))
    with pytest.raises(ResultsError, match=r'pb\.json: benchmark "x": tflops: Input should be a valid number'):
        read_runs(path)


@pytest.mark.slow
def test_sessions_without_pytest_benchmark_or_with_it_disabled(tmp_path):
    (tmp_path / "test_user.py").write_text(USER_TESTS)
    # an unrelated test runs in an environment where the plugin is installed but pytest-benchmark is not loaded
    (tmp_path / "test_other.py").write_text("def test_other():\n    assert True\n")
    plain = inner_pytest(tmp_path, "test_other.py", "-p", "no:benchmark", options=BASE)
    assert plain.returncode == 0 and "1 passed" in plain.stdout, plain.stdout + plain.stderr
    needs = inner_pytest(tmp_path, "test_user.py", "-p", "no:benchmark", "-k", "test_gemm", options=BASE)
    assert needs.returncode == 1 and "the tokenbench fixture needs pytest-benchmark" in needs.stdout
    # disabled (as under xdist): the harness's own timer measures, and the record says so
    off = inner_pytest(tmp_path, "test_user.py", "--benchmark-disable", "-k", "test_gemm or twice")
    assert "1 passed" in off.stdout and "1 failed" in off.stdout, off.stdout + off.stderr
    assert "one workload per test" in off.stdout and "this test already ran gemm 16x16x16 fp32" in off.stdout


def plain_file(path: Path, benchmarks: list[dict], node: str = "ci-1") -> Path:
    path.write_text(json.dumps({"machine_info": {"node": node, "cpu": {"brand_raw": "Test CPU"}},
                                "benchmarks": benchmarks, "datetime": "2026-11-23T10:00:00"}))  # fmt: skip
    return path


def plain_bench(name: str, param: str | None, params: dict | None, median: float, data: bool = True) -> dict:
    stats = {"min": median, "max": median * 1.2, "mean": median * 1.05, "median": median, "stddev": median * 0.05,
             "rounds": 5, "iterations": 1}  # fmt: skip
    if data:
        stats["data"] = [median * f for f in (0.98, 0.99, 1.0, 1.01, 1.02)]
    return {"name": name, "fullname": f"t.py::{name}", "param": param, "params": params, "stats": stats,
            "extra_info": {}}  # fmt: skip


def test_parametrisations_with_the_same_values_stay_apart(tmp_path):
    """Tuples are not scalars: pytest's own id keeps test_shape[shape0] and [shape1] apart."""
    a = plain_bench("test_shape[shape0]", "shape0", {"shape": [1, 2]}, 1e-6)
    b = plain_bench("test_shape[shape1]", "shape1", {"shape": [3, 4]}, 5e-6)
    base = plain_file(tmp_path / "base.json", [a, b])
    cand = plain_file(tmp_path / "cand.json", [a, b])
    result = CliRunner().invoke(app, ["compare", str(base), str(cand), "--format", "json"])
    rows = json.loads(result.output)["comparisons"]
    assert sorted(r["config"] for r in rows) == ["test_shape[shape0]", "test_shape[shape1]"]
    assert all(r["baseline_records"] == 1 and r["change"] == 0.0 for r in rows)
    (run,) = read_runs(base)
    assert run.records[0]["param_shape"] == "[1, 2]" and run.records[0]["device_name"] == "Test CPU"


def test_an_autosave_without_data_warns_instead_of_calling_it_new(tmp_path):
    base = plain_file(tmp_path / "base.json", [plain_bench("test_x", None, None, 1e-6, data=False)])
    cand = plain_file(tmp_path / "cand.json", [plain_bench("test_x", None, None, 1e-6, data=False)])
    result = CliRunner().invoke(app, ["compare", str(base), str(cand), "--format", "json"])
    assert result.exit_code == 2 and "nothing compared: no samples to compare" in result.stderr
    (row,) = json.loads(result.stdout)["comparisons"]
    assert row["verdict"] == "WARN" and "--benchmark-save-data" in row["why"]


def test_a_hostile_node_name_is_cleaned_out_of_the_run_id(tmp_path):
    path = plain_file(tmp_path / "pb.json", [plain_bench("test_x", None, None, 1e-6)], node="evil\n/../\x1b[2J")
    (run,) = read_runs(path)
    assert run.header["run_id"].startswith("pytest-benchmark-20261123100000-evil-------2J-")
    bad = plain_bench("test_x", None, None, 1e-6)
    bad["stats"]["data"] = ["1"]
    with pytest.raises(ResultsError, match=r"stats\.data\.0: Input should be a valid number"):
        read_runs(plain_file(tmp_path / "bad.json", [bad]))
