"""Tests of results on disk (bench/results/writer.py, reader.py): the crash-safe writer, run ids and load()."""

from __future__ import annotations

import json
import math
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from bench.results import writer as results
from bench.results.host_fields import HOST_FIELDS
from bench.results.reader import ResultsError, load
from bench.results.schema import CORE_FIELDS, SCHEMA_VERSION
from bench.results.writer import RunWriter, new_run_id

README = Path(__file__).resolve().parents[2] / "results" / "README.md"


def _record(run_id: str, seq: int, status: str = "ok", **extra: Any) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "run_id": run_id, "seq": seq, "workload": "gemm",
            "status": status, **extra}  # fmt: skip


def _strict_loads(line: str) -> Any:
    """json.loads that refuses NaN, Infinity and -Infinity (which Python accepts by default)."""

    def refuse(name: str) -> None:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(line, parse_constant=refuse)


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


# --- RunWriter -----------------------------------------------------------------------------


def test_header_says_running_from_the_start(tmp_path: Path) -> None:
    w = RunWriter(tmp_path / "out", "run-a", {"suite": "smoke"})
    header = _strict_loads(w.header_path.read_text(encoding="utf-8"))
    assert header["state"] == "running"
    assert header["complete"] is False
    assert header["run_id"] == "run-a"
    assert header["schema_version"] == SCHEMA_VERSION
    assert header["suite"] == "smoke"
    assert header["records_file"] == "run-a.jsonl"
    assert w.header_path == tmp_path / "out" / "run-a.json"
    assert w.records_path.exists() and w.records_path.read_text() == ""
    # the header is replaced atomically: no temp file is left beside it
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["run-a.json", "run-a.jsonl"]
    w.finish("complete", "2024-01-01T00:00:00Z")


def test_appended_record_is_on_disk_before_finish(tmp_path: Path) -> None:
    w = RunWriter(tmp_path, "run-a", {})
    w.append(_record("run-a", 0, time_median_s=0.5))
    # the writer is still open: a crash now must not lose the record
    lines = _lines(w.records_path)
    assert len(lines) == 1
    assert _strict_loads(lines[0])["time_median_s"] == 0.5
    w.append(_record("run-a", 1))
    assert [_strict_loads(x)["seq"] for x in _lines(w.records_path)] == [0, 1]
    df = load(w.records_path)  # readable mid-run, and marked as such
    assert list(df["run_state"]) == ["running", "running"]
    assert not df["run_complete"].any()
    w.finish("complete", "2024-01-01T00:00:00Z")


def test_nan_and_inf_are_written_as_null(tmp_path: Path) -> None:
    w = RunWriter(tmp_path, "run-a", {})
    nan, inf = math.nan, math.inf
    w.append(_record("run-a", 0, time_cv=nan, tflops=inf, gb_per_s=-inf, check_error=1.5,
                     samples_s=[0.1, nan, inf, -inf], nested=[[nan, 2.0], []]))  # fmt: skip
    (line,) = _lines(w.records_path)
    row = _strict_loads(line)  # strict JSON: no NaN / Infinity tokens anywhere
    assert row["time_cv"] is None
    assert row["tflops"] is None
    assert row["gb_per_s"] is None
    assert row["check_error"] == 1.5
    assert row["samples_s"] == [0.1, None, None, None]
    assert row["nested"] == [[None, 2.0], []]
    w.finish("complete", "2024-01-01T00:00:00Z")


@pytest.mark.parametrize(
    ("value", "expected"),
    [((1.0, math.nan), [1.0, None]), ({"a": math.inf}, {"a": None})],
    ids=["tuple", "dict"],
)
def test_nan_inside_tuples_and_dicts_is_written_as_null(tmp_path: Path, value: Any, expected: Any) -> None:
    w = RunWriter(tmp_path, "run-a", {})
    w.append(_record("run-a", 0, extra=value))
    (line,) = _lines(w.records_path)
    assert _strict_loads(line)["extra"] == expected


def test_header_is_strict_json_even_with_nan(tmp_path: Path) -> None:
    w = RunWriter(tmp_path, "run-a", {"clock_ghz": math.nan})
    header = _strict_loads(w.header_path.read_text(encoding="utf-8"))
    assert header["clock_ghz"] is None


def test_finish_complete_counts_records_by_status(tmp_path: Path) -> None:
    w = RunWriter(tmp_path, "run-a", {"suite": "smoke"})
    for seq, status in enumerate(["ok", "failed", "ok", "skipped", "ok", "failed"]):
        w.append(_record("run-a", seq, status))
    w.finish("complete", "2024-01-01T00:00:09Z")
    header = _strict_loads(w.header_path.read_text(encoding="utf-8"))
    # 6 records: ok at 0, 2, 4 -> 3; failed at 1, 5 -> 2; skipped at 3 -> 1
    assert header["state"] == "complete"
    assert header["complete"] is True
    assert (header["n_records"], header["n_ok"], header["n_skipped"], header["n_failed"]) == (6, 3, 1, 2)
    assert header["finished_at"] == "2024-01-01T00:00:09Z"
    assert header["error"] is None
    assert header["suite"] == "smoke"  # the start header's fields survive
    assert w._fd is None  # closed
    assert len(_lines(w.records_path)) == 6


@pytest.mark.parametrize("state", ["interrupted", "crashed"])
def test_finish_other_states_is_not_complete(tmp_path: Path, state: str) -> None:
    w = RunWriter(tmp_path, "run-a", {})
    w.append(_record("run-a", 0))
    w.finish(state, "2024-01-01T00:00:01Z", error="KeyboardInterrupt")
    header = _strict_loads(w.header_path.read_text(encoding="utf-8"))
    assert header["state"] == state
    assert header["complete"] is False
    assert header["error"] == "KeyboardInterrupt"
    assert (header["n_records"], header["n_ok"], header["n_skipped"], header["n_failed"]) == (1, 1, 0, 0)
    df = load(w.records_path)
    assert list(df["run_state"]) == [state]
    assert list(df["run_complete"]) == [False]


def test_empty_run_finishes_with_zero_counts(tmp_path: Path) -> None:
    w = RunWriter(tmp_path, "run-a", {})
    w.finish("complete", "2024-01-01T00:00:00Z")
    header = _strict_loads(w.header_path.read_text(encoding="utf-8"))
    assert (header["n_records"], header["n_ok"], header["n_skipped"], header["n_failed"]) == (0, 0, 0, 0)


# --- run ids -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "t0",
    [
        datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc),
        datetime(2024, 5, 1, 9, 59, 59, tzinfo=timezone.utc),  # 09 -> 10: zero padding matters
        datetime(2024, 12, 31, 23, 59, 59, tzinfo=timezone.utc),  # year boundary
    ],
)
def test_run_ids_sort_by_time(t0: datetime) -> None:
    a, b = new_run_id(t0), new_run_id(t0 + timedelta(seconds=1))
    assert a < b
    assert sorted([b, a]) == [a, b]
    assert a.startswith(t0.strftime("%Y%m%dT%H%M%SZ-"))


def test_run_ids_are_unique_and_have_no_path_separators(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(results.socket, "gethostname", lambda: "node/7\\rack:a b.example")
    t = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
    ids = {new_run_id(t) for _ in range(20)}
    assert len(ids) == 20  # same second, same host: the random part tells them apart
    for run_id in ids:
        assert "/" not in run_id and "\\" not in run_id and os.sep not in run_id
        assert "." not in run_id  # with_suffix(".json") must find the header
        assert Path(run_id).name == run_id


def test_run_id_without_argument_uses_the_current_utc_time() -> None:
    before = datetime.now(timezone.utc).replace(microsecond=0)
    run_id = new_run_id()
    after = datetime.now(timezone.utc)
    stamp = datetime.strptime(run_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    assert before <= stamp <= after


def test_run_id_converts_aware_times_to_utc() -> None:
    plus2 = timezone(timedelta(hours=2))
    local = datetime(2024, 1, 1, 1, 0, 0, tzinfo=plus2)  # = 2023-12-31T23:00:00Z
    assert new_run_id(local).startswith("20231231T230000Z-")
    later_utc = datetime(2024, 1, 1, 0, 0, 0, tzinfo=timezone.utc)  # one hour after `local`
    assert new_run_id(local) < new_run_id(later_utc)


# --- load() --------------------------------------------------------------------------------


def _run(out: Path, run_id: str, statuses: list[str], state: str = "complete") -> RunWriter:
    w = RunWriter(out, run_id, {})
    for seq, status in enumerate(statuses):
        w.append(_record(run_id, seq, status))
    w.finish(state, "2024-01-01T00:00:00Z")
    return w


def test_load_from_records_file_and_from_header(tmp_path: Path) -> None:
    w = _run(tmp_path, "run-a", ["ok", "skipped"])
    for path in (w.records_path, w.header_path, str(w.records_path)):
        df = load(path)
        assert list(df["seq"]) == [0, 1]
        assert list(df["status"]) == ["ok", "skipped"]
        assert list(df["run_state"]) == ["complete", "complete"]
        assert list(df["run_complete"]) == [True, True]


def test_load_directory_recursively_finds_every_run(tmp_path: Path) -> None:
    _run(tmp_path / "node1", "run-a", ["ok", "ok"])
    _run(tmp_path / "node2" / "deeper", "run-b", ["failed"], state="interrupted")
    df = load(tmp_path)
    assert len(df) == 3
    by_run = df.groupby("run_id")
    assert by_run.size().to_dict() == {"run-a": 2, "run-b": 1}
    assert by_run["run_state"].first().to_dict() == {"run-a": "complete", "run-b": "interrupted"}
    assert by_run["run_complete"].first().to_dict() == {"run-a": True, "run-b": False}


def test_load_several_paths_concatenates(tmp_path: Path) -> None:
    a = _run(tmp_path / "a", "run-a", ["ok"])
    b = _run(tmp_path / "b", "run-b", ["ok", "failed"])
    df = load(a.records_path, b.header_path)
    assert list(df["run_id"]) == ["run-a", "run-b", "run-b"]


def test_load_without_header_says_missing(tmp_path: Path) -> None:
    path = tmp_path / "orphan.jsonl"
    path.write_text(json.dumps(_record("orphan", 0)) + "\n", encoding="utf-8")
    df = load(path)
    assert list(df["run_state"]) == ["missing"]
    assert list(df["run_complete"]) == [False]


def test_load_skips_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(_record("r", 0)) + "\n\n   \n" + json.dumps(_record("r", 1)) + "\n")
    assert list(load(path)["seq"]) == [0, 1]


@pytest.mark.parametrize("name", ["does-not-exist", "does-not-exist.jsonl", "nope/deeper"])
def test_load_missing_path_raises(tmp_path: Path, name: str) -> None:
    with pytest.raises(ResultsError) as exc:
        load(tmp_path / name)
    msg = str(exc.value)
    assert Path(name).name in msg
    assert "\n" not in msg


BAD_LINES = {
    "invalid json": "{not json",
    "json array": json.dumps([1, 2, 3]),
    "missing workload": json.dumps({k: v for k, v in _record("r", 2).items() if k != "workload"}),
    "missing run_id": json.dumps({k: v for k, v in _record("r", 2).items() if k != "run_id"}),
    "wrong schema_version": json.dumps({**_record("r", 2), "schema_version": SCHEMA_VERSION + 1}),
    "no schema_version": json.dumps({k: v for k, v in _record("r", 2).items() if k != "schema_version"}),
    "unknown status": json.dumps(_record("r", 2, status="okay\nsecond line")),
}


@pytest.mark.parametrize("bad", BAD_LINES.values(), ids=BAD_LINES.keys())
def test_bad_record_names_file_and_line(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "broken-run.jsonl"
    good = [json.dumps(_record("r", i)) for i in range(2)]
    path.write_text("\n".join([*good, bad, json.dumps(_record("r", 3))]) + "\n", encoding="utf-8")
    with pytest.raises(ResultsError) as exc:
        load(path)
    msg = str(exc.value)
    assert "broken-run.jsonl:3:" in msg
    assert "\n" not in msg


def test_line_numbers_count_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "gappy.jsonl"
    path.write_text(json.dumps(_record("r", 0)) + "\n\n[]\n", encoding="utf-8")
    with pytest.raises(ResultsError, match=r"gappy\.jsonl:3:"):
        load(path)


def test_bad_record_inside_a_directory_is_found(tmp_path: Path) -> None:
    _run(tmp_path / "good", "run-a", ["ok"])
    bad = tmp_path / "bad" / "run-b.jsonl"
    bad.parent.mkdir()
    bad.write_text(json.dumps(_record("run-b", 0, status="weird")) + "\n", encoding="utf-8")
    with pytest.raises(ResultsError, match=r"run-b\.jsonl:1:"):
        load(tmp_path)


def test_results_error_is_a_value_error() -> None:
    assert issubclass(ResultsError, ValueError)


# --- documentation -------------------------------------------------------------------------


def test_every_field_is_documented_in_results_readme() -> None:
    assert README.is_file(), "results/README.md is missing: it documents every field of a record"
    text = README.read_text(encoding="utf-8")
    missing = [key for key in [*CORE_FIELDS, *HOST_FIELDS] if f"`{key}`" not in text]
    assert not missing, f"results/README.md does not document: {missing}"


def test_append_fsyncs_each_record_after_flushing(tmp_path, monkeypatch):
    synced = []
    real = os.fsync

    def spy(fd):
        synced.append(os.fstat(fd).st_size)  # bytes already handed to the OS when fsync is called
        real(fd)

    w = RunWriter(tmp_path, "run-a", {})
    monkeypatch.setattr(results.os, "fsync", spy)
    w.append(_record("run-a", 0))
    w.append(_record("run-a", 1))
    assert len(synced) == 2 and 0 < synced[0] < synced[1]
    w.finish("complete", "2024-01-01T00:00:00Z")
    assert len(synced) == 3 and synced[2] > 0  # the final header too, before its rename


@pytest.mark.parametrize("version", [0, "1", 1.5, None])
def test_load_rejects_any_other_schema_version(tmp_path, version):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({**_record("r", 0), "schema_version": version}) + "\n")
    with pytest.raises(ResultsError, match=r"r\.jsonl:1: unsupported schema_version"):
        load(path)


def test_finish_counts_what_is_on_disk(tmp_path):
    """An interrupt between a record's fsync and the in-memory tally: the header follows the file."""
    from bench.results.writer import RunWriter

    w = RunWriter(tmp_path, "r", {})
    w.append({"schema_version": 1, "run_id": "r", "workload": "x", "status": "ok"})
    w.append({"schema_version": 1, "run_id": "r", "workload": "x", "status": "failed"})
    w.counts["ok"] -= 1  # as if the tally had not happened yet
    w.finish("interrupted", "2026-11-22T00:00:00Z")
    header = json.loads((tmp_path / "r.json").read_text())
    assert header["n_records"] == 2 and header["n_ok"] == 1 and header["n_failed"] == 1
