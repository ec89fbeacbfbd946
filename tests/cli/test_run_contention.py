"""A run beside a CPU hog marks its records contended; a run on a quiet host does not."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.measure import host

ROOT = Path(__file__).resolve().parents[2]
# Quick entries of the smoke suite: a small GEMM and the tiny prefill (the two worst cases)
ENTRIES = ["-w", "gemm:m=256,n=256,k=256,dtype=fp32", "-w", "prefill"]
HOG = "import time\nend = time.monotonic() + {s}\nwhile time.monotonic() < end:\n    pass\n"
HOG_S = 90  # each hog stops by itself after this, whatever happens to the test


def _pinned(cpus: list[int]):
    def pin() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.sched_setaffinity(0, cpus)

    return pin


def _run(out: Path, cpus: list[int], *extra: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    cmd = [sys.executable, "-m", "bench", "run", "--device", "cpu", "--idle-s", "0", "--no-progress", "--suite",
           "smoke", *ENTRIES, "--out", str(out), *extra]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=240, preexec_fn=_pinned(cpus))  # fmt: skip
    records = [json.loads(x) for x in next(out.glob("*.jsonl")).read_text().splitlines()]
    return proc, records


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="pins the run and the hog to the same CPUs (Linux)")
def test_records_measured_beside_a_cpu_hog_are_flagged(tmp_path):
    cpus = host.usable_cpus()[:2]  # the run and the hog share these CPUs, whatever the machine's size
    hogs = [subprocess.Popen([sys.executable, "-c", HOG.format(s=HOG_S)], preexec_fn=_pinned(cpus))
            for _ in range(len(cpus) + 1)]  # fmt: skip
    try:
        time.sleep(1.0)  # the hogs are spinning before the run looks at the host
        proc, records = _run(tmp_path / "out", cpus)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert proc.returncode == 0, proc.stderr
    assert "tokenbench: warning: the host is busy" in proc.stderr  # one line at the start
    ok = [r for r in records if r["status"] == "ok"]
    assert len(ok) == 2 and all(r["contended"] for r in ok), [r.get("contention_reason") for r in ok]
    assert all(r["host_cpus"] == len(cpus) and r["host_others_cpus"] > 1.0 for r in ok)
    assert all(r["torch_threads"] == len(cpus) for r in ok)  # one per usable CPU, whatever the neighbours do
    assert "2 contended" in proc.stdout.strip().splitlines()[-1]  # the headline counts them
    header = json.loads(next((tmp_path / "out").glob("*.json")).read_text())
    assert header["host"]["others_cpus"] > 1.0 and header["host"]["host_cpus"] == len(cpus)


@pytest.mark.slow
def test_a_quiet_run_is_not_flagged(tmp_path):
    found = host.busy_now(1.0)
    others = found["others_cpus"]  # other processes only (this one's time is taken out); else the load average
    quiet = others < 0.2 if others is not None else (found["load_avg"] or [9.0])[0] < 0.5
    if not quiet:
        pytest.skip(f"the host is busy (other processes on {others} CPUs, load "
                    f"{found['load_avg']}): no quiet run to show; test_host.py checks the rule")  # fmt: skip
    # one thread: a neighbour's blip (a daemon, another test's process) does not make it wait, so a quiet
    # host gives no flag; a run that uses every CPU is flagged by any neighbour over SLACK_CPUS
    proc, records = _run(tmp_path / "out", host.usable_cpus(), "--threads", "1")
    assert proc.returncode == 0, proc.stderr
    assert not any(r.get("contended") for r in records), [r.get("contention_reason") for r in records]
    assert "the host is busy" not in proc.stderr
