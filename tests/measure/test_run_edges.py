"""The edges of a run: a signal as it ends, a full disk, an unwritable --out, the files' modes."""

from __future__ import annotations

import json
import os
import resource
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.results import writer as writer_module
from bench.results.writer import RunWriter

ROOT = Path(__file__).resolve().parents[2]
RUN = ["run", "--device", "cpu", "--idle-s", "0", "--no-progress"]
DRIVER = """
import sys
import time
import workloads
from tests.support.fakes import Fake
workloads.REGISTRY["fake"] = Fake()
from bench.cli import main
sys.argv = ["tokenbench", *sys.argv[1:]]
main()
"""


def only_header(out: Path) -> dict:
    (path,) = out.glob("*.json")
    return json.loads(path.read_text())


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_just_after_the_last_record_ends_the_run_cleanly(tmp_path, register, monkeypatch, sig, code):
    """Still inside the runner: an interrupt like any other, every record kept, no traceback."""
    from tests.support.fakes import Fake

    register(Fake())
    append = RunWriter.append

    def append_then_signal(self, record):  # the signal lands in the moment after the record is on disk
        append(self, record)
        os.kill(os.getpid(), sig)

    monkeypatch.setattr(RunWriter, "append", append_then_signal)
    result = CliRunner().invoke(app, [*RUN, "-w", "fake", "--out", str(tmp_path)])
    assert result.exit_code == code and "Traceback" not in result.output, result.output
    header = only_header(tmp_path)
    assert header["state"] == "interrupted" and header["n_records"] == 1
    assert not list(tmp_path.glob(".header-*"))  # no temporary header left behind


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_while_the_run_ends_is_held_until_the_header_is_complete(tmp_path, register, monkeypatch, sig, code):
    """After the last entry: the header is written as complete first, then the signal is answered."""
    from bench.measure import session
    from tests.support.fakes import Fake

    register(Fake())
    record_health = session._record_health

    def signal_then_record_health(*args, **kwargs):
        os.kill(os.getpid(), sig)  # every entry done, the header not yet written
        return record_health(*args, **kwargs)

    monkeypatch.setattr(session, "_record_health", signal_then_record_health)
    result = CliRunner().invoke(app, [*RUN, "-w", "fake", "--out", str(tmp_path)])
    assert result.exit_code == code, result.output
    assert "interrupted after the last record; the run is complete" in result.output
    header = only_header(tmp_path)
    assert header["state"] == "complete" and header["n_records"] == 1 and not list(tmp_path.glob(".header-*"))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers as they were


def test_a_signal_while_the_final_header_is_written_does_not_tear_it(tmp_path, register, monkeypatch):
    from tests.support.fakes import Fake

    register(Fake())
    replace = os.replace
    calls = []

    def replace_after_signal(src, dst):
        calls.append(dst)
        if len(calls) == 2:  # the end-of-run header: a Ctrl-C between its write and its rename
            os.kill(os.getpid(), signal.SIGINT)
        replace(src, dst)

    monkeypatch.setattr(writer_module.os, "replace", replace_after_signal)
    result = CliRunner().invoke(app, [*RUN, "-w", "fake", "--out", str(tmp_path)])
    assert result.exit_code == 130, result.output
    assert only_header(tmp_path)["state"] == "complete" and not list(tmp_path.glob(".header-*"))


def test_a_full_disk_keeps_whole_records_and_says_why_in_one_line(tmp_path):
    """RLIMIT_FSIZE makes the records file 'full' after about two records, as a full disk would."""
    out = tmp_path / "out"
    limit = 120_000  # a fake record with its samples is about 50 kB here; the header about 2 kB

    def small_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    args = [x for n in (1000, 2000, 3000, 4000, 5000) for x in ("-w", f"fake:work={n}")]
    proc = subprocess.run([sys.executable, "-c", DRIVER, *RUN, "--out", str(out), *args],
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, preexec_fn=small_disk,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    *said, line = proc.stderr.strip().splitlines()  # the run's title and notes, then the error in one line
    assert all(not x.startswith("tokenbench: error") for x in said) and "Traceback" not in proc.stderr
    assert line.startswith("tokenbench: error: ") and "cannot write record" in line and "(File too large)" in line
    data = next(out.glob("*.jsonl")).read_bytes()
    assert data.endswith(b"\n") and all(json.loads(x) for x in data.splitlines())  # no torn line
    header = only_header(out)
    kept = data.count(b"\n")
    assert 1 <= kept < 5 and header["state"] == "crashed" and header["n_records"] == kept
    assert f"the {kept} before it are kept" in header["error"]


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("/dev/null", "--out: /dev/null exists and is not a directory"),
        ("/etc/hostname/sub", "--out: cannot create /etc/hostname/sub (Not a directory)"),
        ("/proc", "--out: cannot write in /proc ("),
        ("/tmp/" + "x" * 300, "(File name too long)"),
    ],
)
def test_an_unwritable_out_is_refused_before_anything_runs(out, message):
    result = CliRunner().invoke(app, [*RUN, "-w", "gemm:m=8,n=8,k=8,dtype=fp32", "--out", out])
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert result.output.startswith("tokenbench: error: ") and message in result.output


def test_the_header_is_as_readable_as_the_records(tmp_path):
    before = os.umask(0o027)
    try:
        w = RunWriter(tmp_path, "run-1", {})
        w.append({"status": "ok", "seq": 0})
        w.finish("complete", "2026-11-29T00:00:00.000Z")
    finally:
        os.umask(before)
    header_mode = stat.S_IMODE(w.header_path.stat().st_mode)
    assert header_mode == stat.S_IMODE(w.records_path.stat().st_mode) == 0o640


def _descendants_when_running(proc: subprocess.Popen, n_ranks: int, timeout_s: float = 60) -> list:
    """The launcher's descendants once torchrun and its ranks are up (psutil processes)."""
    import psutil

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        kids = psutil.Process(proc.pid).children(recursive=True)
        if sum("torch.distributed.run" not in " ".join(k.cmdline()) for k in kids) >= n_ranks:
            return kids
        time.sleep(0.2)
    raise AssertionError("torchrun and its ranks did not start")


@pytest.mark.slow
@pytest.mark.parametrize("victim", ["launcher", "torchrun"])
def test_killing_the_launcher_or_torchrun_leaves_no_rank_behind(tmp_path, victim):
    import psutil

    proc = subprocess.Popen([sys.executable, "-m", "bench", "run", "--suite", "dist-smoke", "--device", "cpu",
                             "--nproc", "2", "--idle-s", "0", "--no-progress", "--out", str(tmp_path)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    kids: list = []
    try:
        kids = _descendants_when_running(proc, n_ranks=2)
        torchrun = next(k for k in kids if "torch.distributed.run" in " ".join(k.cmdline()))
        (proc if victim == "launcher" else torchrun).kill()  # SIGKILL: no handler of the victim runs
        _, alive = psutil.wait_procs(kids, timeout=30)
        assert not alive, f"left running after the {victim} was killed: {[p.pid for p in alive]}"
    finally:
        for p in [*kids, psutil.Process(proc.pid) if proc.poll() is None else None]:
            if p is not None and p.is_running():
                p.kill()
        proc.wait(timeout=30)


END_DRIVER = """
import os, signal, sys
import workloads
from bench.measure import session
from tests.support.fakes import Fake
workloads.REGISTRY["fake"] = Fake()
record_health = session._record_health
SIGNAL = getattr(signal, sys.argv[1])
def signal_then_record_health(*args, **kwargs):  # every entry done, the header not yet written
    os.kill(os.getpid(), SIGNAL)
    return record_health(*args, **kwargs)
session._record_health = signal_then_record_health
from bench.cli import main
sys.argv = ["tokenbench", *sys.argv[2:]]
main()
"""


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_real_process_signalled_as_its_run_ends_leaves_a_complete_header(tmp_path, sig, code):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-c", END_DRIVER, sig, *RUN, "-w", "fake", "--out", str(out)], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "interrupted after the last record" in proc.stderr
    assert only_header(out)["state"] == "complete" and not list(out.glob(".header-*"))


@pytest.mark.slow
def test_report_to_a_full_stdout_is_one_line(tmp_path):
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "bench", "report", str(ROOT / "tests" / "data" / "cpu-smoke")],
                              cwd=ROOT, stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr == "tokenbench: error: cannot write the output (No space left on device)\n"


def test_ctrl_c_while_the_command_line_loads_is_one_line(tmp_path):
    shim = tmp_path / "shim" / "typer"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("import os, signal\nos.kill(os.getpid(), signal.SIGINT)  # Ctrl-C mid-import\n")
    proc = subprocess.run([sys.executable, "-m", "bench", "--help"], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": f"{shim.parent}{os.pathsep}{ROOT}"}, timeout=60,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    assert (proc.returncode, proc.stderr) == (130, "tokenbench: interrupted while starting; nothing was measured\n")
