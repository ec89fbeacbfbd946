"""pytest-benchmark JSON files (--benchmark-json, --benchmark-autosave) read as tokenbench runs.

One file is one run. A benchmark made by the tokenbench fixture carries its whole record in
`extra_info["tokenbench"]`; it is taken as it is (validated like any record), with the run id of
the file. Any other benchmark becomes a record of the `pytest-benchmark` family: its test name is
the workload, its parameters are params, and its timing is pytest-benchmark's (per-iteration
round times in `stats.data`, where the file has them). Either way the records land in the same
report tables and comparisons as tokenbench's own.

The file is data from another machine: parsed as JSON only and checked against the shape below,
with errors naming the file and the benchmark.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bench.errors import first_error
from bench.results import files
from bench.results.schema import SCHEMA_VERSION, JsonFileError, check_record, parse_json, read_json_file

FAMILY = "pytest-benchmark"


class _Stats(BaseModel):
    model_config = ConfigDict(extra="allow", allow_inf_nan=False, strict=True)

    min: float = Field(gt=0)
    max: float = Field(gt=0)
    mean: float = Field(gt=0)
    median: float = Field(gt=0)
    stddev: float | None = Field(None, ge=0)
    rounds: int = Field(ge=1)
    iterations: int = Field(1, ge=1)
    data: list[Annotated[float, Field(gt=0)]] | None = None  # saved only with --benchmark-save-data


class _Benchmark(BaseModel):
    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    name: str
    fullname: str
    param: str | None = None  # pytest's id of the parametrisation
    group: str | None = None
    params: dict[str, Any] | None = None
    stats: _Stats
    extra_info: dict[str, Any] = Field(default_factory=dict)


class _File(BaseModel):
    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    machine_info: dict[str, Any]
    commit_info: dict[str, Any] | None = None
    benchmarks: list[_Benchmark]
    datetime: str | None = None
    version: str | None = None


class PytestJsonError(ValueError):
    """A pytest-benchmark file that cannot be read; the message is one line naming the file."""


def looks_like(data: Any) -> bool:
    """True for the top level of a pytest-benchmark JSON file."""
    return isinstance(data, dict) and "benchmarks" in data and "machine_info" in data


def sniff(path: Path, limit: int | None = None) -> bool:
    """True when `path` holds a pytest-benchmark JSON file: read only from a regular file within the
    size limit (`limit` bytes; None: files.limit_bytes()), so a FIFO or a device is never opened."""
    try:
        limit = files.limit_bytes() if limit is None else limit
        return looks_like(parse_json(files.read_text_bounded(path, limit, "a pytest-benchmark file")))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return False


def _run_id(path: Path, f: _File) -> str:
    stamp = "".join(ch for ch in (f.datetime or "") if ch.isdigit())[:14]
    digest = hashlib.sha256(path.name.encode()).hexdigest()[:6]
    host = "".join(c if c.isalnum() or c == "-" else "-" for c in str(f.machine_info.get("node") or "host"))[:32]
    return f"pytest-benchmark-{stamp or 'undated'}-{host}-{digest}"


def _param(value: Any) -> str | int | float | bool | None:
    """A parameter as a record holds it: scalars as they are, anything else as its JSON text."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def _dict(value: Any) -> dict[str, Any]:
    """`value` where it is a JSON object, else an empty one (machine_info is someone else's JSON)."""
    return value if isinstance(value, dict) else {}


def _environment(f: _File) -> dict[str, Any]:
    """The run header's environment, from machine_info (tokenbench's part where the plugin wrote one)."""
    mi = f.machine_info
    tb = _dict(mi.get("tokenbench"))
    env = {
        "hostname": mi.get("node"),
        "python_version": mi.get("python_version"),
        "cpu_model": (mi.get("cpu") or {}).get("brand_raw") if isinstance(mi.get("cpu"), dict) else None,
        **tb,
    }
    if f.commit_info:
        env["git_commit"] = f.commit_info.get("id")
        env["git_dirty"] = f.commit_info.get("dirty")
    return {k: v for k, v in env.items() if isinstance(v, (str, int, float, bool)) or v is None}


def _plain_record(b: _Benchmark, f: _File, run_id: str, seq: int) -> dict[str, Any]:
    """A benchmark the tokenbench fixture did not make: a Python function timed on the host."""
    s = b.stats
    samples = list(s.data or [])
    tb = _dict(f.machine_info.get("tokenbench"))
    cpu = _dict(f.machine_info.get("cpu"))
    params = {f"param_{k}": _param(v) for k, v in (b.params or {}).items()}
    if b.param is not None:  # pytest's own id tells apart parametrisations whose values do not
        params["param_id"] = b.param
    return {
        "schema_version": SCHEMA_VERSION, "run_id": run_id, "seq": seq, "workload": b.fullname.split("[")[0],
        "workload_version": 1, "family": FAMILY, "label": b.name, **params, "status": "ok", "reason": None,
        "hostname": f.machine_info.get("node"), "device": "host", "device_kind": "cpu",
        "device_name": cpu.get("brand_raw") if isinstance(cpu.get("brand_raw"), str) else None,
        "torch_version": tb.get("torch_version"), "driver_version": tb.get("driver_version"),
        "cuda_version": tb.get("cuda_version"), "timer": "pytest-benchmark",
        "n_samples": len(samples) or s.rounds, "samples_s": samples or None, "time_median_s": s.median,
        "time_mean_s": s.mean, "time_min_s": s.min, "time_max_s": s.max, "time_stdev_s": s.stddev,
        "time_cv": s.stddev / s.mean if s.stddev is not None and s.mean > 0 else None,
    }  # fmt: skip


def read(path: Path, limit: int | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(run header, records) of one pytest-benchmark JSON file, of at most `limit` bytes (None: the default)."""
    try:
        data = read_json_file(path, "a pytest-benchmark file", limit)
    except JsonFileError as e:
        raise PytestJsonError(str(e)) from None
    try:
        f = _File.model_validate(data)
    except ValidationError as e:
        raise PytestJsonError(f"{path}: not a pytest-benchmark file: {first_error(e, show_input=True)}") from None
    run_id = _run_id(path, f)
    records = []
    for seq, b in enumerate(f.benchmarks):
        embedded = b.extra_info.get("tokenbench")
        if isinstance(embedded, dict):
            record = {**embedded, "run_id": run_id, "seq": seq}
            if b.stats.data:  # pytest-benchmark's own rounds are the samples either way
                record["samples_s"] = list(b.stats.data)
        else:
            record = _plain_record(b, f, run_id, seq)
        why = check_record(record)
        if why:
            raise PytestJsonError(f"{path}: benchmark {json.dumps(b.fullname)[:80]}: {why}")
        records.append(record)
    header = {"schema_version": SCHEMA_VERSION, "run_id": run_id, "state": "complete", "suite": FAMILY,
              "started_at": f.datetime, "environment": _environment(f)}  # fmt: skip
    return header, records
