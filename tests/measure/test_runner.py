"""The runner: one record per entry, the right status for each failure, numbers that add up."""

from __future__ import annotations

import contextlib
import json
import threading

import pytest
import torch

import workloads
from bench.catalog import gpus
from bench.device.base import CpuDevice
from bench.measure.runner import Runner, one_line, peak_fields, rates
from bench.measure.stats import summarize
from bench.measure.suites import Entry
from bench.measure.timing import TimerConfig
from bench.results.schema import check_record, documented
from bench.results.writer import RunWriter
from tests.support.fakes import Fake, FakeCase
from workloads import get
from workloads.base import Counts

FAST = TimerConfig(warmup_s=0.0, min_time_s=0.0, min_reps=3, max_reps=3)


def entry(wid: str, **raw) -> Entry:
    w = Fake() if wid == "fake" else get(wid)
    return Entry(w, w.parse(raw), FAST)


@pytest.fixture
def runner(cpu, tmp_path):
    writer = RunWriter(tmp_path, "r1", {})
    return Runner(cpu, writer, {"hostname": "h", "torch_version": torch.__version__}, seed=5)


def on_disk(runner) -> list[dict]:
    return [json.loads(line) for line in runner.writer.records_path.read_text().splitlines()]


def test_rates_hand_computed():
    r = rates(Counts(flops=2e12, bytes=1e9, tokens=100), median_s=0.5)
    assert r == {"tflops": 4.0, "gb_per_s": 2.0, "tokens_per_s": 200.0}
    assert rates(Counts(), 0.5) == {"tflops": None, "gb_per_s": None, "tokens_per_s": None}


def test_peak_fractions_hand_computed():
    # H100 SXM: 989 TFLOP/s dense bf16 and 3350 GB/s (REFERENCE.md, NVIDIA datasheet)
    f = peak_fields("NVIDIA H100 80GB HBM3", "bf16", tflops=494.5, gb_per_s=1675.0)
    assert f["peak_gpu_id"] == "H100-SXM"
    assert f["frac_peak_flops"] == pytest.approx(0.5) and f["frac_peak_bw"] == pytest.approx(0.5)
    assert "datasheet" in f["peak_source"].lower() and f["peak_reason"] is None


def test_peak_unknown_is_null_with_a_reason():
    f = peak_fields("Intel(R) Xeon(R) Processor", "fp32", tflops=0.2, gb_per_s=3.0)
    assert f["frac_peak_flops"] is None and f["frac_peak_bw"] is None
    assert "no catalog entry" in f["peak_reason"]
    a100 = peak_fields("NVIDIA A100-SXM4-80GB", "fp8", tflops=100.0, gb_per_s=None)
    assert a100["frac_peak_flops"] is None and "no fp8 peak" in a100["peak_reason"]


def test_ok_record_is_complete_and_consistent(runner):
    (rec,) = runner.run([entry("gemm", m=32, n=48, k=64, dtype="fp32")])
    assert rec["status"] == "ok" and rec["reason"] is None and rec["check_passed"] is True
    assert rec["n_samples"] == len(rec["samples_s"]) == 3
    assert rec["tflops"] == pytest.approx(2 * 32 * 48 * 64 / rec["time_median_s"] / 1e12)
    assert rec["gb_per_s"] == pytest.approx(rec["bytes"] / rec["time_median_s"] / 1e9)
    assert rec["time_p5_s"] <= rec["time_median_s"] <= rec["time_p95_s"]
    assert rec["param_m"] == 32 and rec["param_dtype"] == "fp32" and rec["label"] == "32x48x64 fp32"
    assert rec["frac_peak_flops"] is None and rec["peak_reason"]
    assert rec["started_at"] <= rec["finished_at"] and rec["finished_at"].endswith("Z")
    # the schema: every field is documented (param_* by prefix) and the disk copy matches
    assert all(documented(k) for k in rec), [k for k in rec if not documented(k)]
    assert check_record(rec) is None
    assert on_disk(runner) == [rec]


def test_unsupported_dtype_is_skipped_without_running(runner):
    (rec,) = runner.run([entry("gemm", m=8, n=8, k=8, dtype="tf32")])
    assert rec["status"] == "skipped" and "tensor-core" in rec["reason"]
    assert "time_median_s" not in rec and rec["flops"] == 1024.0


def test_too_big_is_skipped_with_need_and_free(runner):
    (rec,) = runner.run([entry("copy", size_mib=2**30)])  # 1 PiB
    assert rec["status"] == "skipped"
    assert "needs about 2359296.00 GiB" in rec["reason"] and "free on cpu" in rec["reason"]


def test_failures_are_records_and_the_suite_goes_on(runner):
    recs = runner.run(
        [entry("fake", mode="raise"), entry("fake", mode="oom"), entry("fake", mode="wrong"), entry("fake", mode="ok")]
    )
    assert [r["status"] for r in recs] == ["failed", "failed", "failed", "ok"]
    assert recs[0]["reason"] == "RuntimeError: boom"  # one line, the traceback tail dropped
    assert recs[1]["reason"].startswith("out of memory: OutOfMemoryError: CUDA out of memory")
    assert recs[2]["reason"].startswith("output check failed: error 1 > tolerance 0.5")
    assert recs[2]["n_samples"] == 3  # a wrong answer keeps its timing: it is a FAIL, not a gap
    assert [r["seq"] for r in on_disk(runner)] == [0, 1, 2, 3]
    assert runner.writer.counts == {"ok": 1, "skipped": 0, "failed": 3}


def test_tokens_per_s(runner):
    (rec,) = runner.run([entry("fake", work=500)])
    assert rec["tokens"] == 500
    assert rec["tokens_per_s"] == pytest.approx(500 / rec["time_median_s"])
    assert rec["workload_version"] == 3 and rec["family"] == "test"


def test_one_line():
    assert one_line(ValueError("a\nb")) == "ValueError: a"
    assert one_line(KeyError()) == "KeyError"


def test_a_mig_slice_gets_no_whole_card_peak():
    f = peak_fields("NVIDIA H100 80GB HBM3 MIG 1g.10gb", "bf16", tflops=100.0, gb_per_s=None)
    assert f["frac_peak_flops"] is None and "MIG slice" in f["peak_reason"]


def test_the_kernel_that_ran_is_recorded(runner):
    recs = runner.run(
        [
            entry("attention", batch=1, heads=4, kv_heads=2, seq_len=32, head_dim=16, dtype="fp32"),
            entry("gemm", m=8, n=8, k=8, dtype="fp32"),
        ]
    )
    assert recs[0]["kernel"].startswith("sdpa:") and recs[1]["kernel"] == "torch.mm"


class _TightCpu(CpuDevice):
    def mem_free_bytes(self) -> int:
        return 4000  # Fake(work=N) needs 4N bytes; 90% of 4000 = 3600 = work 900


def test_memory_fit_is_90_percent_of_free(tmp_path):
    dev = _TightCpu(torch_device=torch.device("cpu"), name="tight")
    r = Runner(dev, RunWriter(tmp_path, "r", {}), {}, seed=0)
    fits, over = r.run([entry("fake", work=900), entry("fake", work=950)])
    assert fits["status"] == "ok"
    assert over["status"] == "skipped" and "fits up to 90% of free" in over["reason"]


def test_peak_fields_report_the_catalog_figures():
    f = peak_fields("NVIDIA H100 80GB HBM3", "bf16", tflops=494.5, gb_per_s=1675.0)
    assert f["peak_tflops"] == pytest.approx(989.0) and f["peak_gb_per_s"] == pytest.approx(3350.0)


def test_runner_holds_each_record_against_its_own_dtype_peak(tmp_path):
    dev = CpuDevice(torch_device=torch.device("cpu"), name="NVIDIA H100 80GB HBM3")  # a CPU posing as an H100
    r = Runner(dev, RunWriter(tmp_path, "r", {}), {}, seed=0)
    gemm, copy = r.run([entry("gemm", m=32, n=32, k=32, dtype="fp32"), entry("copy", size_mib=1)])
    spec = gpus.lookup(dev.name)
    assert gemm["peak_tflops"] == pytest.approx(spec.peak_tflops["fp32"])
    assert gemm["frac_peak_flops"] == pytest.approx(gemm["tflops"] / gemm["peak_tflops"])
    assert copy["peak_gb_per_s"] == pytest.approx(spec.mem_bandwidth_gbps)
    assert copy["frac_peak_bw"] == pytest.approx(copy["gb_per_s"] / spec.mem_bandwidth_gbps)
    assert copy["frac_peak_flops"] is None


class _FlushableCpu(CpuDevice):
    @property
    def l2_flush(self) -> bool:
        return True


def test_runner_flushes_only_working_sets_that_fit_in_l2(tmp_path):
    dev = _FlushableCpu(torch_device=torch.device("cpu"), name="cpu", l2_cache_bytes=2**20)
    r = Runner(dev, RunWriter(tmp_path, "r", {}), {}, seed=0)
    small, big = r.run([entry("gemm", m=8, n=8, k=8, dtype="fp32"), entry("copy", size_mib=4)])
    assert small["l2_flushed"] is True  # 768 bytes <= 2 MiB
    assert big["l2_flushed"] is False  # 8 MiB > 2 x 1 MiB: evicts itself


def test_each_entry_gets_run_seed_plus_seq(cpu, tmp_path):
    seeds = []

    class SeedSpy(Fake):
        def prepare(self, p, device, seed):
            seeds.append(seed)
            return super().prepare(p, device, seed)

    w = SeedSpy()
    r = Runner(cpu, RunWriter(tmp_path, "r", {}), {}, seed=100)
    r.run([Entry(w, w.parse({}), FAST)] * 3)
    assert seeds == [100, 101, 102]


def test_record_statistics_are_the_summary_of_its_samples(cpu, tmp_path):
    r = Runner(cpu, RunWriter(tmp_path, "r", {}), {}, seed=0)
    cfg = TimerConfig(warmup_s=0.0, min_time_s=0.0, min_reps=20, max_reps=20)
    w = workloads.get("gemm")
    (rec,) = r.run([Entry(w, w.parse({"m": 16, "n": 16, "k": 16, "dtype": "fp32"}), cfg)])
    s = summarize(rec["samples_s"])
    got = [rec[f"time_{k}_s"] for k in ("median", "mean", "p5", "p95", "min", "max", "stdev")] + [rec["time_cv"]]
    assert got == [s.median, s.mean, s.p5, s.p95, s.min, s.max, s.stdev, s.cv]


def test_every_call_of_a_workload_runs_in_the_calling_thread(cpu, tmp_path):
    """No thread of its own: a second thread would bring a second OpenMP team competing for the cores."""
    where: list[tuple[str, bool]] = []

    class SpyCase(FakeCase):
        def run(self) -> object:
            where.append(("run", threading.current_thread() is threading.main_thread()))
            return super().run()

    class ThreadSpy(Fake):
        @contextlib.contextmanager
        def prepare(self, p, device, seed):
            where.append(("prepare", threading.current_thread() is threading.main_thread()))
            yield SpyCase(p)

    assert threading.current_thread() is threading.main_thread()
    w = ThreadSpy()
    r = Runner(cpu, RunWriter(tmp_path, "r", {}), {}, seed=0)
    recs = r.run([Entry(w, w.parse({}), FAST)] * 2)
    assert [rec["status"] for rec in recs] == ["ok", "ok"]
    assert [x for x, _ in where].count("prepare") == 2 and [x for x, _ in where].count("run") >= 2 * FAST.min_reps
    assert all(main for _, main in where)
