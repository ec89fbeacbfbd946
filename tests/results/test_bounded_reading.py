"""Inputs that must be bounded: what the readers refuse to read, and what they keep of a torn file.

Every file a reader takes is a regular file within a size limit; a FIFO, a device, a symlink loop or
a file over the limit is skipped with a warning naming it, never read (a FIFO would block forever,
/dev/zero never ends). A last line cut short by a full disk costs that line, with one warning, and
a number no float can hold is refused where it is read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.results import files
from bench.results.reader import ResultsError, Run, load, load_records, read_header, read_runs
from bench.results.schema import check_header, parse_json
from tests.support.handmade import write_run

ROOT = Path(__file__).resolve().parents[2]
GOOD = {"schema_version": 1, "run_id": "r", "seq": 0, "workload": "gemm", "status": "ok", "tflops": 12.5}


def _within(seconds: float, fn: Callable[[], Any], unblock: Path | None = None) -> Any:
    """fn() in a thread that must finish within `seconds`; a FIFO reader left blocked is released."""
    box: dict[str, Any] = {}

    def call() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # handed to the test below
            box["error"] = e

    t = threading.Thread(target=call, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        if unblock is not None:  # open the FIFO for writing and close it: the blocked read gets EOF
            os.close(os.open(unblock, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail(f"did not return within {seconds} s (blocked reading a FIFO or a device?)")
    if "error" in box:
        raise box["error"]
    return box["value"]


def _read(*paths: Path) -> tuple[list[Run], list[str]]:
    """read_runs(*paths) and the warnings it handed out, in order."""
    notes: list[str] = []
    return read_runs(*paths, on_warning=notes.append), notes


def _hostile_folder(root: Path) -> tuple[Path, Path]:
    """A good run beside a symlink loop, a FIFO, /dev/zero, /dev/null and a FIFO that looks like a pytest file."""
    good = write_run(root, "node")
    (root / "loop-a.jsonl").symlink_to("loop-b.jsonl")
    (root / "loop-b.jsonl").symlink_to("loop-a.jsonl")
    (root / "self.jsonl").symlink_to("self.jsonl")
    fifo = root / "fifo.jsonl"
    os.mkfifo(fifo)
    os.mkfifo(root / "bench.json")  # no .jsonl beside it: a pytest-benchmark candidate
    (root / "zero.jsonl").symlink_to("/dev/zero")
    (root / "null.jsonl").symlink_to("/dev/null")
    (root / "gone.jsonl").symlink_to("nowhere.jsonl")
    return good, fifo


# --- the bounded reader -----------------------------------------------------------------------


def test_a_regular_file_within_the_limit_is_read(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("héllo\n", encoding="utf-8")
    assert files.read_text_bounded(path, 100, "a test file") == "héllo\n"
    assert files.read_bytes_bounded(path, 7, "a test file") == "héllo\n".encode()


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: os.mkfifo(p), "a FIFO, not a regular file"),
        (lambda p: p.symlink_to("/dev/zero"), "a character device, not a regular file"),
        (lambda p: p.mkdir(), "a directory, not a regular file"),
        (lambda p: p.symlink_to(p.name), "a symlink loop"),
        (lambda p: p.write_bytes(b"x" * 101), "101 bytes, over the limit of 100 bytes"),
    ],
    ids=["fifo", "dev-zero", "directory", "symlink-loop", "too-large"],
)
def test_what_is_not_a_bounded_regular_file_is_refused_in_one_line(tmp_path, make, reason):
    path = tmp_path / "x.jsonl"
    make(path)
    with pytest.raises(files.FileRefused) as e:
        _within(5, lambda: files.read_text_bounded(path, 100, "a results file"), unblock=path)
    msg = str(e.value)
    assert msg.startswith(f"{path}: not read as a results file: ") and reason in msg and "\n" not in msg
    assert isinstance(e.value, OSError) and e.value.strerror and reason in e.value.strerror  # `except OSError` code


def test_the_limit_is_stated_and_overridable(monkeypatch):
    monkeypatch.delenv(files.LIMIT_ENV, raising=False)
    assert files.limit_bytes() == files.DEFAULT_LIMIT_MIB * 2**20 == 256 * 2**20
    monkeypatch.setenv(files.LIMIT_ENV, "0.5")
    assert files.limit_bytes() == 2**19
    for bad in ("lots", "0", "-1", "inf", "nan"):
        monkeypatch.setenv(files.LIMIT_ENV, bad)
        with pytest.raises(ValueError, match=rf"{files.LIMIT_ENV}={bad!r}: .*a positive number of MiB"):
            files.limit_bytes()


def test_a_file_over_the_limit_names_it_and_how_to_raise_it(tmp_path, monkeypatch):
    monkeypatch.setenv(files.LIMIT_ENV, "0.001")  # about 1 KiB
    big = tmp_path / "big.jsonl"
    big.write_text((json.dumps(GOOD) + "\n") * 50)
    runs, notes = _read(tmp_path)
    assert runs == []
    (warning,) = notes
    assert warning.startswith(f"{big}: not read as a results file: ") and "over the limit" in warning
    assert files.LIMIT_ENV in warning
    monkeypatch.setenv(files.LIMIT_ENV, "1")
    assert len(read_runs(tmp_path)[0].records) == 50


def test_a_bad_limit_setting_is_one_error(tmp_path, monkeypatch):
    write_run(tmp_path, "node")
    monkeypatch.setenv(files.LIMIT_ENV, "huge")
    with pytest.raises(ResultsError, match=rf"{files.LIMIT_ENV}='huge'"):
        read_runs(tmp_path)


# --- a results folder holding what is not a results file ---------------------------------------


def test_a_folder_with_a_loop_a_fifo_and_devices_reads_the_good_run_and_names_the_rest(tmp_path):
    good, fifo = _hostile_folder(tmp_path)
    t0 = time.monotonic()
    runs, notes = _within(10, lambda: _read(tmp_path), unblock=fifo)
    assert time.monotonic() - t0 < 10
    assert [r.path for r in runs] == [good] and len(runs[0].records) == 6
    named = {w.split(":")[0] for w in notes}
    expected = ["loop-a.jsonl", "loop-b.jsonl", "self.jsonl", "fifo.jsonl", "bench.json", "zero.jsonl", "null.jsonl",
                "gone.jsonl"]  # fmt: skip
    assert named == {str(tmp_path / n) for n in expected}
    assert len(notes) == len(expected)  # each once
    assert all("\n" not in w and ": not read as a results file: " in w for w in notes)
    by_name = {Path(w.split(":")[0]).name: w for w in notes}
    assert by_name["fifo.jsonl"].endswith("a FIFO, not a regular file")
    assert by_name["zero.jsonl"].endswith("a character device, not a regular file")
    assert by_name["self.jsonl"].endswith("a symlink loop")
    assert by_name["gone.jsonl"].endswith("a symlink to nothing")
    os.unlink(fifo)  # the rest without threads: load_records and load say the same
    os.unlink(tmp_path / "bench.json")
    again: list[str] = []
    assert len(load_records(tmp_path, on_warning=again.append)) == 6
    assert len(load(tmp_path, on_warning=again.append)) == 6
    rest = [w for w in notes if "fifo.jsonl" not in w and "bench.json" not in w]
    assert again == rest + rest


def test_a_results_file_named_by_a_run_header_is_checked_too(tmp_path):
    good = write_run(tmp_path, "node")
    good.unlink()
    good.symlink_to("/dev/zero")
    runs, notes = _within(10, lambda: _read(good.with_suffix(".json")))
    assert runs == [] and notes == [f"{good}: not read as a results file: a character device, not a regular file"]


def test_a_header_that_is_a_fifo_is_an_error_not_a_hang(tmp_path):
    good = write_run(tmp_path, "node")
    header = good.with_suffix(".json")
    header.unlink()
    os.mkfifo(header)
    with pytest.raises(ResultsError, match=r"\.json: cannot read \(a FIFO, not a regular file\)"):
        _within(10, lambda: read_header(good), unblock=header)


def test_report_on_a_hostile_folder_returns_within_seconds(tmp_path):
    _hostile_folder(tmp_path)
    env = {**os.environ, "COLUMNS": "200"}
    try:  # seconds: the time to start Python and import pandas, then read one small run
        proc = subprocess.run([sys.executable, "-m", "bench", "report", str(tmp_path)], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=30)  # fmt: skip
    except subprocess.TimeoutExpired:  # the child is killed by now: nothing is left blocked on the FIFO
        pytest.fail("report on a folder with a FIFO, /dev/zero and a symlink loop did not return in 30 s")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "gemm" in proc.stdout


def test_report_names_what_it_skipped(tmp_path):
    _hostile_folder(tmp_path)
    os.unlink(tmp_path / "fifo.jsonl")  # CliRunner runs in this process: no FIFO that could block it
    os.unlink(tmp_path / "bench.json")
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for name in ("self.jsonl", "zero.jsonl", "null.jsonl", "loop-a.jsonl"):
        assert f"tokenbench: warning: {tmp_path / name}: not read as a results file" in result.output


# --- a torn last line ----------------------------------------------------------------------------


def _records(n: int) -> str:
    return "".join(json.dumps({**GOOD, "seq": i}) + "\n" for i in range(n))


@pytest.mark.parametrize(
    "tail",
    [b'{"schema_version": 1, "run_id": "r", "seq": 3, "work', b"{", '{"label": "caf\u00e9'.encode()[:-1]],
    ids=["cut-in-a-key", "one-brace", "cut-inside-a-utf8-character"],
)
def test_a_torn_last_line_keeps_every_complete_record_with_one_warning(tmp_path, tail):
    path = tmp_path / "r.jsonl"
    path.write_bytes(_records(3).encode() + tail)
    runs, notes = _read(path)
    assert [r["seq"] for r in runs[0].records] == [0, 1, 2]
    (warning,) = notes
    assert warning.startswith(f"{path}:4: the last line is torn (no newline at its end") and "\n" not in warning
    assert runs[0].warnings == notes
    again: list[str] = []
    assert len(load_records(path, on_warning=again.append)) == 3 and again == notes
    assert len(load_records(path)) == 3  # no one to tell: still read


def test_a_torn_only_line_gives_no_records_and_the_warning(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"schema_version": 1, "ru')
    runs, notes = _read(path)
    assert runs[0].records == [] and [w.split(": ")[0] for w in notes] == [f"{path}:1"]


def test_a_complete_last_line_without_a_newline_is_a_record(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(_records(2) + json.dumps({**GOOD, "seq": 2}))
    runs, notes = _read(path)
    assert [r["seq"] for r in runs[0].records] == [0, 1, 2] and notes == []


def test_a_bad_line_in_the_middle_is_still_an_error(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(_records(2) + '{"schema_version": 1, "ru\n' + _records(1))
    with pytest.raises(ResultsError, match=r"r\.jsonl:3: not valid JSON"):
        read_runs(path)


def test_a_last_line_with_its_newline_that_is_bad_is_an_error(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(_records(2) + '{"schema_version": 1, "ru\n')
    with pytest.raises(ResultsError, match=r"r\.jsonl:3: not valid JSON"):
        read_runs(path)


def test_a_complete_but_invalid_last_line_without_a_newline_is_an_error(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(_records(1) + json.dumps({**GOOD, "status": "great"}))
    with pytest.raises(ResultsError, match=r"r\.jsonl:2: status 'great'"):
        read_runs(path)


# --- numbers bounded where they are read ---------------------------------------------------------


def test_an_integer_no_float_can_hold_is_refused_naming_file_and_line(tmp_path):
    path = tmp_path / "r.jsonl"
    huge = "1" + "0" * 400  # 401 digits
    path.write_text(_records(1) + json.dumps(GOOD)[:-1] + f', "param_prompt_len": {huge}}}\n')
    with pytest.raises(ResultsError) as e:
        read_runs(path)
    assert str(e.value) == f"{path}:2: not valid JSON (an integer of 401 digits is out of range for a number)"


def test_integers_up_to_the_float_range_are_kept_exactly():
    assert parse_json(str(10**308)) == 10**308 and parse_json("-12") == -12
    with pytest.raises(ValueError, match="an integer of 310 digits is out of range"):
        parse_json(str(2 * 10**309))
    with pytest.raises(ValueError, match="an integer of 5000 digits"):  # never handed to int()
        parse_json("9" * 5000)


@pytest.mark.parametrize("field", ["param_prompt_len", "param_new_tokens"])
@pytest.mark.parametrize("command", ["report", "cost"])
def test_report_and_cost_refuse_a_401_digit_parameter_in_one_line(tmp_path, field, command):
    path = write_run(tmp_path, "node")
    lines = path.read_text().splitlines()
    out, bad_lines = [], []
    for n, line in enumerate(lines, 1):
        rec = json.loads(line)
        if field in rec:
            rec[field] = 10**400
            bad_lines.append(n)
        out.append(json.dumps(rec))
    path.write_text("\n".join(out) + "\n")
    result = CliRunner().invoke(app, [command, str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        f"tokenbench: error: {path}:{bad_lines[0]}: not valid JSON (an integer of 401 digits is out of range for a "
        "number)"
    ]


# --- the run header's schema version --------------------------------------------------------------


def test_a_header_of_an_unknown_schema_version_is_refused_with_the_version(tmp_path):
    path = write_run(tmp_path, "node")
    header = path.with_suffix(".json")
    header.write_text(json.dumps({**json.loads(header.read_text()), "schema_version": 2}))
    with pytest.raises(ResultsError) as e:
        read_runs(tmp_path)
    assert str(e.value) == f"{header}: unsupported schema_version 2 (this tokenbench reads 1)"
    assert check_header({"schema_version": 1, "run_id": "r", "state": "complete"}) is None


# --- pytest-benchmark files -----------------------------------------------------------------------


def test_a_pytest_benchmark_file_is_sniffed_only_within_the_limit(tmp_path, monkeypatch):
    from bench.results import pytest_json

    path = tmp_path / "b.json"
    path.write_text(json.dumps({"machine_info": {}, "benchmarks": []}))
    assert pytest_json.sniff(path)
    monkeypatch.setenv(files.LIMIT_ENV, "0.00001")  # 10 bytes
    assert not pytest_json.sniff(path)
    fifo = tmp_path / "f.json"
    os.mkfifo(fifo)
    assert not _within(5, lambda: pytest_json.sniff(fifo), unblock=fifo)
