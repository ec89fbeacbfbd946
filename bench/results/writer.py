"""Results on disk, written: one JSONL record per measurement, flushed at once, and a run header.

`<out>/<run-id>.jsonl` gets a line the moment a workload finishes; `<out>/<run-id>.json` is the
run header, written atomically at the start (state "running") and again at the end ("complete",
"interrupted" or "crashed"). A header still saying "running" means the process died mid-run.
"""

from __future__ import annotations

import contextlib
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


class ResultsWriteError(RuntimeError):
    """A record or header that could not be written (a full disk, a lost mount); one line."""


def file_mode() -> int:
    """The mode a new file gets under this process's umask (the header must not be stricter than records)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def check_out_dir(path: Path) -> str | None:
    """Why results cannot be written under `path` (one line), or None: tried before anything is measured."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        return f"{path} exists and is not a directory"
    except OSError as e:
        return f"cannot create {path} ({e.strerror or e})"
    try:
        fd, probe = tempfile.mkstemp(dir=path, prefix=".tokenbench-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        return f"cannot write in {path} ({e.strerror or e})"
    return None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class RunWriter:
    """Appends records to `<run-id>.jsonl`, each a whole line, fsynced one by one."""

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
        self._mode = file_mode()
        self._write_header()
        self._fd: int | None = os.open(self.records_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, self._mode)

    def _write_header(self) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.out_dir, prefix=".header-", suffix=".tmp")
        try:
            os.fchmod(fd, self._mode)  # mkstemp makes it 0600; the header is read as widely as the records
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(finite_json(self.header), f, indent=2, allow_nan=False, default=str)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())  # on disk before the rename, so a power loss leaves old or new
            os.replace(tmp, self.header_path)  # atomic: a reader never sees half a header
        except BaseException as e:  # a full disk, or a signal: no stray temporary file, the old header stands
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(e, OSError):
                raise ResultsWriteError(
                    f"{self.header_path}: cannot write the run header ({e.strerror or e})"
                ) from None
            raise

    def append(self, record: dict[str, Any]) -> None:
        """Write one record as one whole line: a write that fails is cut back, never left torn."""
        clean = {k: finite_json(v) for k, v in record.items()}
        line = (json.dumps(clean, allow_nan=False, default=str) + "\n").encode("utf-8")
        assert self._fd is not None, "append after finish"
        end = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            _write_all(self._fd, line)
            os.fsync(self._fd)
        except OSError as e:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, end)  # back to the last whole record
            kept = sum(self.counts.values())
            raise ResultsWriteError(f"{self.records_path}: cannot write record {kept + 1} ({e.strerror or e}); "
                                    f"the {kept} before it are kept") from None  # fmt: skip
        self.counts[record["status"]] = self.counts.get(record["status"], 0) + 1

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _count_on_disk(self) -> dict[str, int]:
        """Records per status as the file holds them (a line that does not parse is not counted)."""
        counts = dict.fromkeys(STATUSES, 0)
        with open(self.records_path, encoding="utf-8") as f:
            for line in f:
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    status = json.loads(line)["status"]
                    counts[status] = counts.get(status, 0) + 1
        return counts

    def finish(self, state: str, finished_at: str, error: str | None = None) -> None:
        """Close the records file and rewrite the header with the end state and counts.

        The counts are taken from the file itself: a Ctrl-C between a record's fsync and the
        in-memory tally must not make the header disagree with what is on disk.
        """
        self._close()
        self.counts = self._count_on_disk()
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
