"""Results on disk, written: one JSONL record per measurement, flushed at once, and a run header.

`<out>/<run-id>.jsonl` gets a line the moment a workload finishes; `<out>/<run-id>.json` is the
run header, written atomically at the start (state "running") and again at the end ("complete",
"interrupted" or "crashed"). A header still saying "running" means the process died mid-run.
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
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from bench.results.schema import SCHEMA_VERSION, STATUSES


class RecordSink(Protocol):
    """Where the runner puts each finished record: a run's file, rank 0's gatherer, a list in memory."""

    run_id: str

    def append(self, record: dict[str, Any]) -> None: ...


def utc_now() -> str:
    """UTC timestamp, ISO 8601 with a Z, to the millisecond: the time format of records and headers."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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
