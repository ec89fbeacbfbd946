"""Ctrl-C and SIGTERM stop a run within seconds, even inside a call that takes minutes, while every
entry is measured in the main thread."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# A quick entry, then one fp32 GEMM of 2.2 TFLOP: about 20 s a call on one thread of a fast core, minutes on a
# busy one. The timer lets it run (no warm-up, one sample, 600 s), so only the signal can end it early.
LONG = """description = "a quick entry, then one long CPU call"
[timer]
warmup_s = 0
min_time_s = 0.01
min_reps = 1
max_reps = 3
max_time_s = 600
[[bench]]
workload = "gemm"
params = { m = 64, n = 64, k = 64, dtype = "fp32" }
[[bench]]
workload = "gemm"
params = { m = 8192, n = 8192, k = 16384, dtype = "fp32" }
"""
BOUND_S = 15.0  # generous on a busy 2-core machine; the call itself takes 20 s or more


def _records(out: Path) -> list[dict]:
    files = list(out.glob("*.jsonl"))
    return [json.loads(x) for x in files[0].read_text().splitlines()] if files else []


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_a_long_call_ends_the_run_within_seconds(tmp_path, sig, code):
    suite, out = tmp_path / "long.toml", tmp_path / "out"
    suite.write_text(LONG)
    cmd = [sys.executable, "-m", "bench", "run", "--device", "cpu", "--idle-s", "0", "--no-progress", "--threads",
           "1", "--suite", str(suite), "--out", str(out)]  # fmt: skip
    child = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not _records(out):  # the quick entry is on disk
            time.sleep(0.1)
        assert _records(out), "the first entry never finished"
        time.sleep(1.0)  # well inside the long entry: its inputs or its one call
        sent = time.monotonic()
        child.send_signal(sig)
        stdout, stderr = child.communicate(timeout=120)
        took = time.monotonic() - sent
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    assert child.returncode == code, stderr
    assert took < BOUND_S, f"the run took {took:.1f} s to stop"
    assert "Traceback" not in stderr and "interrupted: 1 finished record kept" in stderr
    assert "64x64x64" in stdout  # the finished rows are printed
    header = json.loads(next(out.glob("*.json")).read_text())
    assert header["state"] == "interrupted" and header["n_records"] == 1 and sig.name in header["error"]
    (first,) = _records(out)  # the finished record is intact, the interrupted one was not written
    assert first["status"] == "ok" and first["param_m"] == 64 and first["n_samples"] >= 1


def test_after_an_interrupt_a_second_signal_ends_the_process_at_once():
    script = ("import os, signal, time\nfrom bench.measure.session import exit_at_once\nexit_at_once(130)\n"
              "os.kill(os.getpid(), signal.SIGINT)\ntime.sleep(30)\nraise SystemExit(0)\n")  # fmt: skip
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 130 and time.monotonic() - start < 25


def test_an_interrupted_runner_writes_nothing_more(cpu, register):
    from bench.measure.runner import Runner
    from bench.measure.suites import Entry
    from bench.measure.timing import TimerConfig
    from tests.support.fakes import Fake

    class Sink:
        run_id = "r"

        def __init__(self) -> None:
            self.written: list[dict] = []

        def append(self, record: dict) -> None:
            self.written.append(record)

    fake, sink = register(Fake()), Sink()
    runner = Runner(cpu, sink, {})
    entry = Entry(fake, fake.parse({}), TimerConfig(warmup_s=0, min_time_s=0, min_reps=1, max_reps=1))
    runner.run([entry])
    runner.stop()  # as an interrupt does while an entry is measured
    record = runner.run_entry(1, entry)
    assert record["status"] == "ok" and len(sink.written) == 1 and runner.records == sink.written


def test_an_error_writing_a_record_is_raised_in_the_caller(cpu, register):
    from bench.measure.runner import Runner
    from bench.measure.suites import Entry
    from bench.measure.timing import TimerConfig
    from tests.support.fakes import Fake

    class Full:
        run_id = "r"

        def append(self, record: dict) -> None:
            raise OSError("disk full")

    fake = register(Fake())
    runner = Runner(cpu, Full(), {})
    with pytest.raises(OSError, match="disk full"):
        runner.run([Entry(fake, fake.parse({}), TimerConfig(warmup_s=0, min_time_s=0, min_reps=1, max_reps=1))])


def test_tokenbench_run_measures_in_the_main_thread_and_restores_the_signals(tmp_path, register):
    from typer.testing import CliRunner

    from bench.cli import app
    from tests.support.fakes import Fake, FakeCase

    where: list[bool] = []

    class SpyCase(FakeCase):
        def run(self) -> object:
            where.append(threading.current_thread() is threading.main_thread())
            return super().run()

    class ThreadSpy(Fake):
        id = "threadspy"

        @contextlib.contextmanager
        def prepare(self, p, device, seed):
            where.append(threading.current_thread() is threading.main_thread())
            yield SpyCase(p)

    register(ThreadSpy())
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    wakeup_fd = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(wakeup_fd)
    assert threading.current_thread() is threading.main_thread()
    result = CliRunner().invoke(app, ["run", "-w", "threadspy", "-w", "threadspy:work=7", "--device", "cpu",
                                      "--idle-s", "0", "--no-progress", "--out", str(tmp_path)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(where) >= 4 and all(where)  # two set-ups and their calls, all in the main thread
    assert {sig: signal.getsignal(sig) for sig in handlers} == handlers  # the watcher is gone
    assert signal.set_wakeup_fd(wakeup_fd) == wakeup_fd
