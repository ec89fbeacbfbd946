"""Suites: TOML files that list workloads, their parameters (with sweeps) and timer settings.

A suite is a name under workloads/suites/ (smoke, node) or a path to a .toml file. Every entry
is expanded and validated before anything runs, so a bad suite costs no measurement time. The
entries are counted before any sweep is expanded: a suite of more than MAX_ENTRIES (or than its
own `max_entries`) is refused, where a sweep of 10^9 would otherwise exhaust memory validating.
"""

from __future__ import annotations

import difflib
import itertools
import math
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

import workloads
from bench.errors import first_error
from bench.measure.timing import TimerConfig
from workloads.base import Params, ParamsError, Workload

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


# At least a second an entry (warm-up and sampling), 10,000 entries are hours of measuring: more is
# a mistake in a sweep, unless the suite says otherwise with `max_entries`.
MAX_ENTRIES = 10_000


class SuiteError(ValueError):
    """A suite that cannot be used; the message is one line naming the file and the entry."""


class BenchSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workload: str
    params: dict[str, Any] = Field(default_factory=dict)
    sweep: dict[str, list[Any]] = Field(default_factory=dict, description="cartesian product of values")
    timer: dict[str, Any] = Field(default_factory=dict, description="overrides of the suite's timer")


class SuiteFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = ""
    max_entries: int = Field(MAX_ENTRIES, ge=1, strict=True, description="refuse a suite of more entries than this")
    timer: dict[str, Any] = Field(default_factory=dict)
    bench: list[BenchSpec] = Field(min_length=1)


@dataclass(frozen=True)
class Entry:
    """One measurement to make: a workload, validated parameters and how to time it."""

    workload: Workload
    params: Params
    timer: TimerConfig
    tags: tuple[tuple[str, Any], ...] = ()  # fields the record carries as they are (a soak's interval)

    @property
    def label(self) -> str:
        return f"{self.workload.id} {self.workload.label(self.params)}"


@dataclass(frozen=True)
class Suite:
    name: str
    source: str
    description: str
    timer: TimerConfig
    entries: tuple[Entry, ...]


def builtin_dir() -> Path:
    return Path(str(resources.files("workloads") / "suites"))


def builtin_names() -> list[str]:
    return sorted(p.stem for p in builtin_dir().glob("*.toml"))


def _timer(base: dict[str, Any], override: dict[str, Any], where: str) -> TimerConfig:
    try:
        return TimerConfig(**{**base, **override})
    except ValidationError as e:
        raise SuiteError(f"{where}: timer.{first_error(e, 'suite')}") from None


def expand(spec: BenchSpec, where: str) -> list[tuple[Workload, Params]]:
    """Every parameter set of one [[bench]] entry, validated."""
    try:
        workload = workloads.get(spec.workload)
    except workloads.UnknownWorkload as e:
        raise SuiteError(f"{where}: {e}") from None
    keys = list(spec.sweep)
    combos = itertools.product(*(spec.sweep[k] for k in keys)) if keys else [()]
    out = []
    for combo in combos:
        try:
            out.append((workload, workload.parse({**spec.params, **dict(zip(keys, combo, strict=True))})))
        except ParamsError as e:
            raise SuiteError(f"{where}: {e}") from None
    return out


def parse_suite(text: str, name: str, source: str) -> Suite:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SuiteError(f"suite {source}: not valid TOML ({e})") from None
    try:
        spec = SuiteFile(**raw)
    except ValidationError as e:
        raise SuiteError(f"suite {source}: {first_error(e, 'suite')}") from None
    base_timer = _timer(spec.timer, {}, f"suite {source}")
    count = sum(math.prod(len(values) for values in b.sweep.values()) for b in spec.bench)  # nothing expanded yet
    if count > spec.max_entries:
        raise SuiteError(f"suite {source}: {count:,} entries, more than the limit of {spec.max_entries:,}; give "
                         f"max_entries = N in the suite to allow more")  # fmt: skip
    entries: list[Entry] = []
    for i, bench in enumerate(spec.bench):
        where = f"suite {source}: bench[{i}] ({bench.workload})"
        timer = _timer(spec.timer, bench.timer, where)
        entries.extend(Entry(w, p, timer) for w, p in expand(bench, where))
    return Suite(name, source, spec.description, base_timer, tuple(entries))


def load_suite(name_or_path: str) -> Suite:
    """A built-in suite by name, or a suite file by path."""
    path = Path(name_or_path)
    builtin_name = (builtin_dir() / f"{name_or_path}.toml").is_file()
    # a folder named like a built-in suite (`--out smoke` made it) is not a suite file
    if path.suffix == ".toml" or path.is_file() or (path.exists() and not builtin_name):
        if not path.is_file():
            raise SuiteError(f"suite file {name_or_path!r} does not exist")
        return parse_suite(path.read_text(encoding="utf-8"), path.stem, str(path))
    builtin = builtin_dir() / f"{name_or_path}.toml"
    if not builtin.is_file():
        near = difflib.get_close_matches(name_or_path, builtin_names(), n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        known = ", ".join(builtin_names())
        raise SuiteError(f"unknown suite {name_or_path!r}: known are {known} (or give a .toml path){hint}")
    return parse_suite(builtin.read_text(encoding="utf-8"), name_or_path, builtin.name)


def parse_workload_arg(arg: str) -> tuple[str, dict[str, str] | None]:
    """`ID` or `ID:key=value,key=value` from the command line: (id, params or None)."""
    wid, sep, rest = arg.partition(":")
    if not sep:
        return wid.strip(), None
    params: dict[str, str] = {}
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise SuiteError(f"--workload {arg!r}: expected key=value, got {item!r}")
        params[key.strip()] = value.strip()
    return wid.strip(), params


def select(suite: Suite, workload_args: list[str]) -> list[Entry]:
    """Entries to run: the whole suite, or for each --workload its suite entries (ID) or the
    given configuration (ID:key=value,...); an ID absent from the suite runs its defaults."""
    if not workload_args:
        return list(suite.entries)
    chosen: list[Entry] = []
    for arg in workload_args:
        wid, params = parse_workload_arg(arg)
        where = f"--workload {arg!r}"
        in_suite = [e for e in suite.entries if e.workload.id == wid]
        if params is None and in_suite:
            chosen.extend(in_suite)
            continue
        for workload, p in expand(BenchSpec(workload=wid, params=params or {}), where):
            chosen.append(Entry(workload, p, suite.timer))
    return chosen
