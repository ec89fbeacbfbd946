"""Results on disk, read back: runs, records and a DataFrame, as data only (JSON, never pickle or eval).

Every record and header is checked against the schema in bench/results/schema.py; pytest-benchmark
JSON files are read through bench/results/pytest_json.py into the same records.

Only regular files within the size limit of bench/results/files.py are read. What a folder holds
besides (a FIFO, a device, a symlink loop or to nothing, a file over the limit) is skipped, and a
records file whose last line is torn (no newline at its end, as a full disk or a crash leaves it)
is read without that line. Neither is printed here: each is a one-line warning handed to the
caller's `on_warning` (the command prints it; a Run also keeps the warnings of its own file).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.results import files, pytest_json
from bench.results.schema import check_header, check_record, parse_json, read_json_file

REFERENCE_DIR = "reference"
Say = Callable[[str], None]  # where a one-line warning goes


class ResultsError(ValueError):
    """A results file that cannot be read; the message names the file and line."""


# Files beside a run that are not records: `tokenbench serve`'s per-request lines.
SIDECARS = (".requests.jsonl",)


def _row(path: Path, lineno: int, line: str) -> dict[str, Any]:
    """One line of a records file as a record, checked against the schema; errors name file and line."""
    try:
        row: dict[str, Any] = parse_json(line)
    except ValueError as e:
        raise ResultsError(f"{path}:{lineno}: not valid JSON ({getattr(e, 'msg', e)})") from None
    except RecursionError:
        raise ResultsError(f"{path}:{lineno}: not a record (JSON nested too deeply)") from None
    why = check_record(row)
    if why:
        raise ResultsError(f"{path}:{lineno}: {why}")
    return row


def _torn(path: Path, lineno: int, tail: bytes) -> str | None:
    """The warning for a last line without its newline that is cut short, else None (then it is read
    as any line, and an error says what is wrong with it). Cut short: JSON that ends too early, its
    last UTF-8 character perhaps cut in two."""
    try:
        text = tail.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.reason != "unexpected end of data":
            return None  # not text: the error says so
        text = tail[: e.start].decode("utf-8", errors="replace")
    try:
        json.loads(text)  # the syntax only: _row judges the values
    except json.JSONDecodeError as e:
        return (f"{path}:{lineno}: the last line is torn (no newline at its end, not valid JSON: {e.msg}), as a "
                f"full disk or a crash leaves it: skipped; every complete record before it is read")  # fmt: skip
    except (ValueError, RecursionError):  # a complete line with a bad value: _row says what
        return None
    return None


def _read_jsonl(path: Path, limit: int) -> tuple[list[dict[str, Any]], list[str]]:
    """Every record of a .jsonl file, each checked against the schema (errors name file and line),
    and the warning for a torn last line. FileRefused when the file is not one to read."""
    try:
        data = files.read_bytes_bounded(path, limit, "a results file")
    except files.FileRefused:
        raise
    except OSError as e:
        raise ResultsError(f"{path}: cannot read ({e.strerror or e})") from None
    end = max(data.rfind(b"\n"), data.rfind(b"\r")) + 1  # the complete lines; after them a line without its newline
    body, tail = data[:end], data[end:]
    rows, lineno = [], 0
    try:
        for lineno, line in enumerate(io.TextIOWrapper(io.BytesIO(body), encoding="utf-8"), 1):
            if line.strip():
                rows.append(_row(path, lineno, line))
    except UnicodeDecodeError:
        raise ResultsError(f"{path}: not UTF-8 text (is it a results file?)") from None
    if not tail.strip():
        return rows, []
    torn = _torn(path, lineno + 1, tail)
    if torn:
        return rows, [torn]
    try:
        return [*rows, _row(path, lineno + 1, tail.decode("utf-8"))], []
    except UnicodeDecodeError:
        raise ResultsError(f"{path}: not UTF-8 text (is it a results file?)") from None


def read_header(records_path: Path, limit: int | None = None) -> dict[str, Any] | None:
    """The run header beside a records file, checked against the schema; None when it is missing.

    A header that is not a regular file within `limit` bytes (None: the default) is an error.
    """
    header_path = records_path.with_suffix(".json")
    if not header_path.exists():
        return None
    try:
        header = read_json_file(header_path, "a run header", limit)
    except ValueError as e:  # JsonFileError, or a malformed size limit
        raise ResultsError(str(e)) from None
    why = check_header(header)
    if why:
        raise ResultsError(f"{header_path}: {why}")
    return header


def _admit(path: Path, limit: int, say: Say) -> bool:
    """True when `path` is a regular file within the limit; else why not is said."""
    try:
        files.check(path, limit, "a results file")
    except files.FileRefused as e:
        say(str(e))
        return False
    except OSError:  # unreadable for another reason (permissions): reading it says so
        return True
    return True


def _folder_files(folder: Path, limit: int, say: Say) -> list[Path]:
    """The records files found under `folder`, a `reference` folder below it left out (baselines join
    a report only when named); what is there but not a regular file within the limit is skipped."""
    found = [f for f in sorted(folder.rglob("*.json*")) if REFERENCE_DIR not in f.relative_to(folder).parts[:-1]]
    records = [f for f in found if f.suffix == ".jsonl" and not f.name.endswith(SIDECARS) and _admit(f, limit, say)]
    # a .json beside no .jsonl is no run header: it may be a pytest-benchmark file (--benchmark-autosave)
    # (in a .benchmarks folder it is one even when damaged: then reading it says what is wrong)
    others = [f for f in found if f.suffix == ".json" and not f.with_suffix(".jsonl").exists()]
    pytest_files = [f for f in others if _admit(f, limit, say) and (pytest_json.sniff(f, limit)
                    or ".benchmarks" in f.relative_to(folder).parts)]  # fmt: skip
    return records + pytest_files


def _record_files(paths: Iterable[str | Path], limit: int, say: Say) -> list[Path]:
    """The records files under `paths`: tokenbench .jsonl files, and pytest-benchmark .json files."""
    files_: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files_.extend(_folder_files(p, limit, say))
        elif p.suffix == ".json" and p.with_suffix(".jsonl").exists():
            files_.append(p.with_suffix(".jsonl"))
        elif p.suffix == ".json" and p.is_file() and _admit(p, limit, say):
            if not pytest_json.sniff(p, limit):
                raise ResultsError(f"{p}: a run header without its records file {p.with_suffix('.jsonl').name}")
            files_.append(p)
        elif p.suffix == ".json" and p.is_file():
            continue  # over the limit: skipped, with its warning
        elif p.is_file():
            files_.append(p)
        elif p.exists():
            raise ResultsError(f"{p}: not a results file or directory")
        else:
            raise ResultsError(f"{p}: no such file or directory")
    return files_


@dataclass
class Run:
    """One run as read back: its records file, its header (None when missing), its records, and a
    warning for each line of its records file that was skipped (a torn last line)."""

    path: Path
    header: dict[str, Any] | None
    records: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)

    @property
    def state(self) -> str:
        return str(self.header.get("state", "unknown")) if self.header else "missing"


def _read_run(path: Path, limit: int) -> Run:
    """One run from its records file: a pytest-benchmark .json file, or a .jsonl beside its header."""
    if path.suffix == ".json":  # pytest-benchmark's
        try:
            header, rows = pytest_json.read(path, limit)
        except pytest_json.PytestJsonError as e:
            raise ResultsError(str(e)) from None
        return Run(path, header, [{**r, "run_state": "complete", "run_complete": True} for r in rows])
    rows, warnings = _read_jsonl(path, limit)
    run = Run(path, read_header(path, limit), [], warnings)
    run.records = [{**row, "run_state": run.state, "run_complete": run.state == "complete"} for row in rows]
    return run


def _size_limit() -> int:
    """The size limit per file read (bench/results/files.py), as a ResultsError when malformed."""
    try:
        return files.limit_bytes()
    except ValueError as e:
        raise ResultsError(str(e)) from None


def _ignore(_warning: str) -> None:
    pass


def read_runs(*paths: str | Path, on_warning: Say | None = None) -> list[Run]:
    """Runs from .jsonl files, run headers or directories (searched recursively), validated.

    Each record gets `run_state` and `run_complete` from its run's header ("missing" when none).
    Every file skipped (not a regular file, over the size limit) and every torn last line is one
    line handed to `on_warning` as it is found (by the CLI: `tokenbench: warning: ...` on stderr).
    """
    say = on_warning or _ignore
    limit = _size_limit()
    runs = []
    seen: set[Path] = set()
    for path in _record_files(paths, limit, say):
        real = Path(os.path.realpath(path))  # never raises, a symlink loop made since included
        if real in seen:  # the same file named twice, or found under two of the paths
            continue
        seen.add(real)
        try:
            run = _read_run(path, limit)
        except files.FileRefused as e:  # swapped for a FIFO or grown since it was found
            say(str(e))
            continue
        for warning in run.warnings:
            say(warning)
        runs.append(run)
    return runs


def load_records(*paths: str | Path, on_warning: Say | None = None) -> list[dict[str, Any]]:
    """Every record of every run under `paths`, as dicts with their JSON types intact (warnings as for read_runs)."""
    return [r for run in read_runs(*paths, on_warning=on_warning) for r in run.records]


def load(*paths: str | Path, on_warning: Say | None = None) -> pd.DataFrame:
    """Records from .jsonl files, run headers or directories (searched recursively), as a DataFrame."""
    return pd.DataFrame(load_records(*paths, on_warning=on_warning))
