"""Results on disk, read back: runs, records and a DataFrame, as data only (JSON, never pickle or eval).

Every record and header is checked against the schema in bench/results/schema.py; pytest-benchmark
JSON files are read through bench/results/pytest_json.py into the same records.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bench.results import pytest_json
from bench.results.schema import JsonFileError, check_header, check_record, parse_json, read_json_file

REFERENCE_DIR = "reference"


class ResultsError(ValueError):
    """A results file that cannot be read; the message names the file and line."""


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
        run = Run(path, read_header(path), [])
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
