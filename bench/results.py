"""Results on disk: one JSONL record per measurement, flushed at once, and a run header.

`<out>/<run-id>.jsonl` gets a line the moment a workload finishes; `<out>/<run-id>.json` is the
run header, written atomically at the start (state "running") and again at the end ("complete",
"interrupted" or "crashed"). A header still saying "running" means the process died mid-run.
`read_runs()`, `load_records()` and `load()` read results back as data only (JSON, never pickle or eval),
checked against the schema in bench/schema.py.
"""

from __future__ import annotations

import csv
import json
import math
import os
import secrets
import socket
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from bench import pytest_json
from bench.schema import (
    FIELDS,
    SCHEMA_VERSION,
    STATUSES,
    JsonFileError,
    check_header,
    check_record,
    documented,
    parse_json,
    read_json_file,
)

__all__ = ["FIELDS", "SCHEMA_VERSION", "STATUSES", "ResultsError", "RunWriter", "TimelineWriter", "documented", "load"]


REFERENCE_DIR = "reference"


class ResultsError(ValueError):
    """A results file that cannot be read; the message names the file and line."""


def new_run_id(now: datetime | None = None) -> str:
    """`<UTC time>-<host>-<random>`: sortable, unique across nodes writing to one folder."""
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    host = "".join(c if c.isalnum() or c == "-" else "-" for c in socket.gethostname())[:32]
    return f"{now:%Y%m%dT%H%M%SZ}-{host or 'host'}-{secrets.token_hex(3)}"


def finite_json(value: Any) -> Any:
    """JSON has no NaN or infinity: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    return value


class RunWriter:
    """Appends records to `<run-id>.jsonl`, flushed and fsynced one by one."""

    def __init__(self, out_dir: str | Path, run_id: str, header: dict[str, Any]):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.run_id = run_id
        self.records_path = self.out_dir / f"{run_id}.jsonl"
        self.header_path = self.out_dir / f"{run_id}.json"
        self.header = {
            "schema_version": SCHEMA_VERSION,
            "run_id": run_id,
            "state": "running",
            "complete": False,
            **header,
            "records_file": self.records_path.name,
        }
        self.counts = dict.fromkeys(STATUSES, 0)
        self._write_header()
        self._fh = open(self.records_path, "a", encoding="utf-8")  # noqa: SIM115 - closed in finish

    def _write_header(self) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.out_dir, prefix=".header-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(finite_json(self.header), f, indent=2, allow_nan=False, default=str)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())  # on disk before the rename, so a power loss leaves old or new
        os.replace(tmp, self.header_path)  # atomic: a reader never sees half a header

    def append(self, record: dict[str, Any]) -> None:
        clean = {k: finite_json(v) for k, v in record.items()}
        self._fh.write(json.dumps(clean, allow_nan=False, default=str) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.counts[record["status"]] = self.counts.get(record["status"], 0) + 1

    def finish(self, state: str, finished_at: str, error: str | None = None) -> None:
        """Close the records file and rewrite the header with the end state and counts.

        The counts are taken from the file itself: a Ctrl-C between a record's fsync and the
        in-memory tally must not make the header disagree with what is on disk.
        """
        self._fh.close()
        self.counts = dict.fromkeys(STATUSES, 0)
        with open(self.records_path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    status = json.loads(line)["status"]
                    self.counts[status] = self.counts.get(status, 0) + 1
        self.header.update(
            {
                "state": state,
                "complete": state == "complete",
                "finished_at": finished_at,
                "error": error,
                "n_records": sum(self.counts.values()),
                **{f"n_{s}": n for s, n in self.counts.items()},
            }
        )
        self._write_header()


class TimelineWriter:
    """`<run-id>.timeline.csv`: every telemetry sample of every measurement, beside the records.

    One row per sample: the record's `seq`, `t_s` from the window's start (negative: the read
    just before it), `in_window`, then the sample's values. Flushed after each measurement.
    """

    def __init__(self, out_dir: str | Path, run_id: str, columns: Iterable[str]):
        self.path = Path(out_dir) / f"{run_id}.timeline.csv"
        self.columns = ["seq", "t_s", "in_window", *columns]
        self._fh = open(self.path, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed in close()
        self._csv = csv.writer(self._fh)
        self._csv.writerow(self.columns)
        self._fh.flush()

    def append(self, seq: int, t0_s: float, t1_s: float, samples: Iterable[Any]) -> None:
        """Write the samples of one window (objects with the columns as attributes, and t_s)."""
        for smp in samples:
            row = [seq, f"{smp.t_s - t0_s:.6f}", t0_s <= smp.t_s <= t1_s]
            row += [getattr(smp, c) for c in self.columns[3:]]
            self._csv.writerow(["" if v is None else v for v in row])
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every record of a .jsonl file, each checked against the schema (errors name file and line)."""
    rows = []
    try:
        f = open(path, encoding="utf-8")  # noqa: SIM115 - closed by the with below
    except OSError as e:
        raise ResultsError(f"{path}: cannot read ({e.strerror or e})") from None
    with f:
        try:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = parse_json(line)
                except ValueError as e:
                    raise ResultsError(f"{path}:{lineno}: not valid JSON ({getattr(e, 'msg', e)})") from None
                except RecursionError:
                    raise ResultsError(f"{path}:{lineno}: not a record (JSON nested too deeply)") from None
                why = check_record(row)
                if why:
                    raise ResultsError(f"{path}:{lineno}: {why}")
                rows.append(row)
        except UnicodeDecodeError:
            raise ResultsError(f"{path}: not UTF-8 text (is it a results file?)") from None
    return rows


def read_header(records_path: Path) -> dict[str, Any] | None:
    """The run header beside a records file, checked against the schema; None when it is missing."""
    header_path = records_path.with_suffix(".json")
    if not header_path.exists():
        return None
    try:
        header = read_json_file(header_path, "a run header")
    except JsonFileError as e:
        raise ResultsError(str(e)) from None
    why = check_header(header)
    if why:
        raise ResultsError(f"{header_path}: {why}")
    return header


def _record_files(paths: Iterable[str | Path]) -> list[Path]:
    """The records files under `paths`: tokenbench .jsonl files, and pytest-benchmark .json files."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():  # a `reference` folder below is left out: baselines join a report only when named
            found = [f for f in sorted(p.rglob("*.json*")) if REFERENCE_DIR not in f.relative_to(p).parts[:-1]]
            files.extend(f for f in found if f.suffix == ".jsonl")
            # a .json beside no .jsonl is no run header: it may be a pytest-benchmark file (--benchmark-autosave)
            # (in a .benchmarks folder it is one even when damaged: then reading it says what is wrong)
            files.extend(f for f in found if f.suffix == ".json" and not f.with_suffix(".jsonl").exists()
                         and (pytest_json.sniff(f) or ".benchmarks" in f.relative_to(p).parts))  # fmt: skip
        elif p.suffix == ".json" and p.with_suffix(".jsonl").exists():
            files.append(p.with_suffix(".jsonl"))
        elif p.suffix == ".json" and p.is_file() and pytest_json.sniff(p):
            files.append(p)
        elif p.suffix == ".json" and p.is_file():
            raise ResultsError(f"{p}: a run header without its records file {p.with_suffix('.jsonl').name}")
        elif p.is_file():
            files.append(p)
        elif p.exists():
            raise ResultsError(f"{p}: not a results file or directory")
        else:
            raise ResultsError(f"{p}: no such file or directory")
    return files


@dataclass
class Run:
    """One run as read back: its records file, its header (None when missing) and its records."""

    path: Path
    header: dict[str, Any] | None
    records: list[dict[str, Any]]

    @property
    def state(self) -> str:
        return str(self.header.get("state", "unknown")) if self.header else "missing"


def read_runs(*paths: str | Path) -> list[Run]:
    """Runs from .jsonl files, run headers or directories (searched recursively), validated.

    Each record gets `run_state` and `run_complete` from its run's header ("missing" when none).
    """
    runs = []
    seen: set[Path] = set()
    for path in _record_files(paths):
        if path.resolve() in seen:  # the same file named twice, or found under two of the paths
            continue
        seen.add(path.resolve())
        if path.suffix == ".json":  # pytest-benchmark's
            try:
                header, rows = pytest_json.read(path)
            except pytest_json.PytestJsonError as e:
                raise ResultsError(str(e)) from None
            runs.append(Run(path, header, [{**r, "run_state": "complete", "run_complete": True} for r in rows]))
            continue
        header = read_header(path)
        run = Run(path, header, [])
        for row in _read_jsonl(path):
            run.records.append({**row, "run_state": run.state, "run_complete": run.state == "complete"})
        runs.append(run)
    return runs


def load_records(*paths: str | Path) -> list[dict[str, Any]]:
    """Every record of every run under `paths`, as dicts with their JSON types intact."""
    return [r for run in read_runs(*paths) for r in run.records]


def load(*paths: str | Path) -> pd.DataFrame:
    """Records from .jsonl files, run headers or directories (searched recursively), as a DataFrame."""
    return pd.DataFrame(load_records(*paths))
