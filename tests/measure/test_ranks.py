"""Several processes through the real launch path: `tokenbench run --nproc N --device cpu` starts
torchrun, which starts N ranks on gloo. Collectives are checked against hand-computed nccl-tests
figures, data-parallel throughput is summed over ranks, and a corrupted rank fails its record."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path

import pytest

from bench.results.reader import read_runs
from tests.support.fakes import Fake, FakeCase

ROOT = Path(__file__).resolve().parents[2]

FAST_TIMER = """
[timer]
warmup_s = 0.05
min_time_s = 0.1
min_reps = 5
max_reps = 500
max_time_s = 2.0
cv_threshold = 0.5
"""

FOUR_RANKS = (
    FAST_TIMER
    + """
[[bench]]
workload = "all_reduce"
params = { size_kib = 64 }

[[bench]]
workload = "all_gather"
params = { size_kib = 1.01 }   # 1034 bytes: 258 fp32 elements, 64 per rank, so S rounds down to 1024

[[bench]]
workload = "reduce_scatter"
params = { size_kib = 64, dtype = "bf16" }

[[bench]]
workload = "all_reduce"
params = { size_kib = 32, corrupt_rank = 2 }

[[bench]]
workload = "all_gather"
params = { size_kib = 32, raise_rank = 3 }   # rank 3 fails while setting up: no hang, the run goes on

[[bench]]
workload = "gemm"
params = { m = 64, n = 64, k = 64, dtype = "fp32" }
"""
)


def launch(tmp_path: Path, nproc: int, *args: str) -> tuple[subprocess.CompletedProcess, list]:
    """`python -m bench run --nproc N --device cpu ARGS`: the launcher a user runs, as a child.

    A hang must not outlive the test: the ranks give up on each other after 60 s, and on the
    test's own timeout the launcher's whole process group (torchrun, every rank) is killed.
    """
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "bench", "run", "--nproc", str(nproc), "--device", "cpu", "--idle-s", "0",
           "--no-progress", "--dist-timeout-s", "60", "--out", str(out), *args]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)  # fmt: skip
    try:
        stdout, stderr = child.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        stdout, stderr = child.communicate()
    proc = subprocess.CompletedProcess(cmd, child.returncode, stdout, stderr)
    runs = read_runs(out) if out.exists() else []
    return proc, runs


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """The dist-smoke suite on 2 CPU processes (about 15 s on 2 cores)."""
    return launch(tmp_path_factory.mktemp("two"), 2, "--suite", "dist-smoke")


@pytest.fixture(scope="module")
def four_ranks(tmp_path_factory):
    path = tmp_path_factory.mktemp("four")
    (path / "four.toml").write_text(FOUR_RANKS)
    return launch(path, 4, "--suite", str(path / "four.toml"))


def by_entry(records: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in records:
        out.setdefault(f"{r['workload']} {r['label']}", []).append(r)
    return out


@pytest.mark.slow
def test_two_ranks_write_one_run_with_one_record_per_rank(two_ranks):
    proc, runs = two_ranks
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(runs) == 1 and runs[0].state == "complete"
    header, records = runs[0].header, runs[0].records
    assert header["world_size"] == 2 and [r["rank"] for r in header["ranks"]] == [0, 1]
    entries = by_entry(records)
    assert len(entries) == 10  # gemm, 3 collectives x 2 sizes, train none/ddp/fsdp
    for name, recs in entries.items():
        assert sorted(r["rank"] for r in recs) == [0, 1], name
        assert {r["world_size"] for r in recs} == {2} and {r["node_rank"] for r in recs} == {0}
    assert all(r["status"] == "ok" for r in records), [r["reason"] for r in records if r["reason"]]
    assert "node summary: 2 processes" in proc.stdout


@pytest.mark.slow
def test_collective_figures_by_hand_on_two_ranks(two_ranks):
    _, runs = two_ranks
    entries = by_entry(runs[0].records)
    factors = {"all_reduce": 2 * (2 - 1) / 2, "all_gather": (2 - 1) / 2, "reduce_scatter": (2 - 1) / 2}
    for op, factor in factors.items():
        for size_kib in (32, 1024):
            for r in entries[f"{op} {size_kib} KiB fp32" if size_kib < 1024 else f"{op} 1 MiB fp32"]:
                assert r["size_bytes"] == size_kib * 1024
                assert r["busbw_factor"] == factor
                assert r["algbw_gb_per_s"] == pytest.approx(size_kib * 1024 / r["time_median_s"] / 1e9)
                assert r["busbw_gb_per_s"] == pytest.approx(r["algbw_gb_per_s"] * factor)
                assert r["wrong_values"] == 0 and r["check_passed"] and r["backend"] == "gloo"


@pytest.mark.slow
def test_data_parallel_throughput_is_summed_over_ranks(two_ranks):
    _, runs = two_ranks
    entries = by_entry(runs[0].records)
    for mode in ("ddp", "fsdp"):
        recs = entries[f"train tiny b2 s64 {mode}"]
        for r in recs:
            assert r["tokens_per_s"] == pytest.approx(2 * 64 / r["time_median_s"])  # this rank's batch
            assert r["kernel"] == f"eager {mode}"
        total = math.fsum(r["tokens_per_s"] for r in recs)
        assert all(r["job_tokens_per_s"] == pytest.approx(total) and r["job_ranks"] == 2 for r in recs)
        assert total > max(r["tokens_per_s"] for r in recs)  # a sum, not an average


@pytest.mark.slow
def test_four_ranks_factors_rounding_and_a_corrupted_rank(four_ranks):
    proc, runs = four_ranks
    assert proc.returncode == 1, proc.stdout + proc.stderr  # a failed record fails the run
    assert "Traceback" not in proc.stderr  # torchrun is told the run finished; the launcher exits 1
    entries = by_entry(runs[0].records)
    ar = entries["all_reduce 64 KiB fp32"]
    assert sorted(r["rank"] for r in ar) == [0, 1, 2, 3]
    assert {r["busbw_factor"] for r in ar} == {2 * 3 / 4}
    ag = entries["all_gather 1.01 KiB fp32"]
    assert {r["size_bytes"] for r in ag} == {64 * 4 * 4} and {r["busbw_factor"] for r in ag} == {3 / 4}
    rs = entries["reduce_scatter 64 KiB bf16"]
    assert {r["busbw_factor"] for r in rs} == {3 / 4} and {r["wrong_values"] for r in rs} == {0}
    bad = {r["rank"]: r for r in entries["all_reduce 32 KiB fp32 corrupt rank 2"]}
    assert bad[2]["status"] == "failed" and bad[2]["wrong_values"] == 1
    assert "1 of 8192 values wrong on rank 2 of 4 (exact integer sums)" in bad[2]["reason"]
    assert all(bad[k]["status"] == "ok" and bad[k]["wrong_values"] == 0 for k in (0, 1, 3))
    failing = {r["rank"]: r for r in entries["all_gather 32 KiB fp32 raise on rank 3"]}
    assert failing[3]["reason"] == "RuntimeError: raise_rank=3: this rank fails while setting up, as asked"
    assert all(failing[k]["reason"].startswith("RuntimeError: another rank could not set this entry up") for k in
               (0, 1, 2))  # fmt: skip
    assert "rank 3 (" in proc.stderr and "raise_rank=3: this rank fails" in proc.stderr  # said at once, by rank 3
    assert {r["status"] for r in entries["gemm 64x64x64 fp32"]} == {"ok"}  # the run went on after the failure
    assert runs[0].state == "complete" and runs[0].header["n_planned"] == 6 * 4
    summary = runs[0].header["node_summary"]
    assert sorted((f["gpu"], f["workload"]) for f in summary["failures"]) == [
        ("rank 0", "all_gather"), ("rank 1", "all_gather"), ("rank 2", "all_gather"), ("rank 2", "all_reduce"),
        ("rank 3", "all_gather")]  # fmt: skip
    assert "FAILED: " in proc.stdout and "rank 2: all_reduce 32 KiB fp32 corrupt rank 2" in proc.stdout


def test_one_process_skips_collectives_with_the_reason(tmp_path):
    from typer.testing import CliRunner

    from bench.cli import app

    args = ["run", "--device", "cpu", "--idle-s", "0", "--no-progress", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, [*args, "-w", "all_reduce:size_kib=32", "-w", "train:parallel=ddp"])
    assert result.exit_code == 0, result.output
    records = read_runs(tmp_path)[0].records
    assert [r["status"] for r in records] == ["skipped", "skipped"]
    assert records[0]["reason"].startswith("a collective needs 2 or more ranks")
    assert records[1]["reason"].startswith("parallel=ddp needs several processes")
    assert "rank" not in records[0]  # a one-process run says nothing about ranks


def test_nproc_with_one_named_gpu_is_refused():
    from typer.testing import CliRunner

    from bench.cli import app

    result = CliRunner().invoke(app, ["run", "--nproc", "2", "--device", "cuda:1"])
    assert result.exit_code == 2
    assert "--nproc 2 runs one process per GPU; --device cuda:1 names one GPU" in result.output


def test_torchrun_argv_and_option_removal():
    from bench.measure.ranks import torchrun_argv, without_option

    args = without_option(["--suite", "x", "--nproc", "4", "--out=o", "--nproc=2"], "--nproc")
    assert args == ["--suite", "x", "--out=o"]
    argv = torchrun_argv(4, args)
    assert argv[1:6] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=4", "-m"]
    assert argv[6:] == ["bench", "run", "--suite", "x", "--out=o"]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_to_the_launcher_stops_every_rank_and_keeps_the_records(tmp_path, sig):
    """SIGTERM (a scheduler) or SIGINT (Ctrl-C): every rank ends its run, torchrun ends quietly."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "bench", "run", "--nproc", "2", "--device", "cpu", "--idle-s", "0", "--no-progress",
           "--dist-timeout-s", "60", "--suite", "dist-smoke", "--out", str(out)]  # fmt: skip
    child = subprocess.Popen(cmd, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, start_new_session=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    output = ""
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # until the first entries are on disk
            files = list(out.glob("*.jsonl"))
            if files and len(files[0].read_text().splitlines()) >= 4:
                break
            time.sleep(0.2)
        child.send_signal(sig)
        output, _ = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    assert child.returncode == 128 + sig, output
    assert "Traceback" not in output and "SignalException" not in output, output  # one line, not torchrun's report
    (run,) = read_runs(out)
    assert run.state == "interrupted" and sig.name in run.header["error"]
    assert len(run.records) >= 4 and len(run.records) % 2 == 0  # whole entries: one record per rank
    leftovers = subprocess.run(["pgrep", "-f", str(out)], capture_output=True, text=True).stdout.split()
    assert leftovers == []  # torchrun and both ranks are gone


# --- the Runner's agreement between ranks, without processes -------------------------------


class LockstepFake(Fake):
    """The scripted workload, made to run in lockstep like a collective."""

    def lockstep(self, p) -> bool:
        return True

    @contextlib.contextmanager
    def prepare(self, p, device, seed: int):
        if p.mode == "raise":
            raise RuntimeError("cannot allocate on this rank")
        yield FakeCase(p)


@dataclass
class OtherRanks:
    """This rank's view of the others: their answers to 'can you all?' in turn, and the counts they ask for."""

    others_ok: list = dc_field(default_factory=list)  # answers in turn: can all run it, are all set up; then yes
    wants: int = 0
    rank: int = 1
    asked: list = dc_field(default_factory=list)

    def fields(self) -> dict:
        return {"rank": self.rank, "local_rank": self.rank, "node_rank": 0, "world_size": 2}

    def barrier(self) -> None:
        self.asked.append("barrier")

    def all_ok(self, ok: bool) -> bool:
        self.asked.append(("all_ok", ok))
        return ok and (self.others_ok.pop(0) if self.others_ok else True)

    def agree_max(self, n: int) -> int:
        self.asked.append(("agree", n))
        return max(n, self.wants) if n or self.wants else 0


def lockstep_runner(tmp_path, others: OtherRanks):
    from bench.device.base import cpu_device
    from bench.measure.runner import Runner
    from bench.results.writer import RunWriter

    return Runner(cpu_device(), RunWriter(tmp_path, "r", {}), {"hostname": "h"}, dist=others)


def lockstep_entry(mode: str = "ok"):
    from bench.measure.suites import Entry
    from bench.measure.timing import TimerConfig

    w = LockstepFake()
    return Entry(w, w.parse({"mode": mode, "work": 10}), TimerConfig(warmup_s=0, min_time_s=0, min_reps=3, max_reps=3))


def test_a_rank_that_cannot_set_up_fails_the_entry_and_says_so_to_the_others(tmp_path):
    others = OtherRanks()
    record = lockstep_runner(tmp_path, others).run_entry(0, lockstep_entry("raise"))
    assert record["status"] == "failed" and record["reason"] == "RuntimeError: cannot allocate on this rank"
    assert ("all_ok", False) in others.asked and not any(a[0] == "agree" for a in others.asked if a != "barrier")


def test_the_others_fail_the_entry_when_one_rank_could_not_set_up(tmp_path):
    others = OtherRanks(others_ok=[True, False])  # all can run it; one could not set it up
    record = lockstep_runner(tmp_path, others).run_entry(0, lockstep_entry())
    assert record["status"] == "failed"
    assert record["reason"].startswith("RuntimeError: another rank could not set this entry up")
    assert record["rank"] == 1 and record["world_size"] == 2


def test_a_rank_keeps_calling_while_another_still_wants_samples(tmp_path):
    others = OtherRanks(wants=1)  # the other rank asks for one more call at every decision...
    calls = {"n": 0}

    def wants(n: int) -> int:  # ... for its first 20 decisions
        calls["n"] += 1
        return max(n, 1 if calls["n"] <= 20 else 0)

    others.agree_max = wants  # type: ignore[method-assign]
    record = lockstep_runner(tmp_path, others).run_entry(0, lockstep_entry())
    assert record["status"] == "ok" and record["n_samples"] + record["warmup_reps"] >= 19  # alone it would stop at 3


def test_the_others_skip_the_entry_when_one_rank_cannot_run_it(tmp_path):
    others = OtherRanks(others_ok=[False])
    record = lockstep_runner(tmp_path, others).run_entry(0, lockstep_entry())
    assert record["status"] == "skipped" and record["reason"].startswith("another rank cannot run it")
    assert [a for a in others.asked if a != "barrier"] == [("all_ok", True)]  # nothing set up, nothing timed
