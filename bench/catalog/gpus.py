"""The GPU catalog: vendor datasheet peaks (dense) and a lookup by torch device name.

`bench/catalog/gpus.toml` is the single source of peak figures; fractions of peak anywhere in the
harness come from `peak_flops` and `peak_bandwidth_bytes_per_s`, never from a constant in code.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import re
import sys
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, ValidationError, field_validator

from bench.errors import first_error
from bench.results import files

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PeakDtype = Literal["fp32", "tf32", "fp16", "bf16", "fp8"]
PEAK_DTYPES: tuple[str, ...] = get_args(PeakDtype)

_DATE_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])(-\d{2})?$")


def check_date(v: Any, pattern: re.Pattern[str] = _DATE_RE, expected: str = "YYYY-MM or YYYY-MM-DD") -> Any:
    """A catalog date: a string matching `pattern` (a full date must exist), or an unquoted TOML date."""
    if isinstance(v, dt.date):  # an unquoted TOML date arrives as a date object
        return v.isoformat()[:10]
    if isinstance(v, str):
        if not pattern.match(v):
            raise ValueError(f"expected {expected}, got {v!r}")
        if len(v) == 10:
            dt.date.fromisoformat(v)  # rejects 2024-02-30
    return v


class CatalogError(ValueError):
    """The catalog file is unreadable or invalid; the message is one line naming file, entry, field."""


class GpuSpec(BaseModel):
    """One GPU model: identity, how torch names it, and its datasheet peaks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    vendor: str = Field(min_length=1)
    name: str = Field(min_length=1)
    match: tuple[str, ...] = Field(min_length=1)
    memory_bytes: int = Field(gt=0)
    mem_bandwidth_gbps: float = Field(gt=0)  # decimal GB/s
    tdp_w: float = Field(gt=0)
    peak_tflops: dict[PeakDtype, PositiveFloat]  # dense TFLOP/s
    source: str = Field(min_length=1)
    source_url: str = Field(pattern=r"^https?://\S+$")
    source_date: str
    note: str | None = None
    weak: bool = False

    @field_validator("match")
    @classmethod
    def _match_not_blank(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        # A blank or padded pattern would match (nearly) every device name.
        for m in v:
            if not m or m != m.strip():
                raise ValueError(f"match strings must be non-empty and unpadded, got {m!r}")
        return v

    @field_validator("source_date", mode="before")
    @classmethod
    def _check_date(cls, v: Any) -> Any:
        return check_date(v)


def _where(entry: Any, index: int) -> str:
    entry_id = entry.get("id") if isinstance(entry, dict) else None
    return f"gpu[{index}] ({entry_id})" if isinstance(entry_id, str) else f"gpu[{index}]"


def _parse(text: str, label: str) -> list[GpuSpec]:
    def fail(msg: str) -> CatalogError:
        return CatalogError(" ".join(f"{label}: {msg}".split()))  # always one line

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise fail(f"invalid TOML: {e}") from None
    extra = sorted(set(data) - {"gpu"})
    if extra:
        raise fail(f"unknown top-level key(s) {extra}; expected only [[gpu]] tables")
    entries = data.get("gpu")
    if not isinstance(entries, list) or not entries:
        raise fail("expected one or more [[gpu]] tables")
    return parse_entries(entries, label)


def parse_entries(entries: list[Any], label: str) -> list[GpuSpec]:
    """Validate [[gpu]] tables (from any file): one-line CatalogError naming file, entry and field."""

    def fail(msg: str) -> CatalogError:
        return CatalogError(" ".join(f"{label}: {msg}".split()))

    specs: list[GpuSpec] = []
    seen_ids: dict[str, int] = {}
    seen_match: dict[str, str] = {}
    for i, entry in enumerate(entries):
        try:
            spec = GpuSpec.model_validate(entry)
        except ValidationError as e:
            raise fail(f"{_where(entry, i)}: {first_error(e, 'entry')}") from None
        if spec.id in seen_ids:
            raise fail(f"{_where(entry, i)}: id: duplicate id (also gpu[{seen_ids[spec.id]}])")
        seen_ids[spec.id] = i
        for m in spec.match:
            # The same pattern on two entries would make lookup depend on file order.
            other = seen_match.setdefault(m.lower(), spec.id)
            if other != spec.id:
                raise fail(f"{_where(entry, i)}: match: {m!r} is also a match of {other}")
        specs.append(spec)
    return specs


@functools.lru_cache(maxsize=1)
def _packaged() -> tuple[GpuSpec, ...]:
    text = (resources.files("bench") / "catalog" / "gpus.toml").read_text(encoding="utf-8")
    return tuple(_parse(text, "bench/catalog/gpus.toml"))


def load_catalog(path: str | Path | None = None) -> list[GpuSpec]:
    """All entries of a catalog file; None reads the packaged one (parsed once, then cached)."""
    if path is None:
        return list(_packaged())
    p = Path(path)
    try:
        text = files.read_text_bounded(p, files.limit_bytes(), "a catalog file")  # not /dev/zero, not a FIFO
    except OSError as e:
        raise CatalogError(f"{p}: cannot read: {e.strerror or e}") from None
    return _parse(text, str(p))


def _matches(pattern: str, device_name: str) -> bool:
    # Bounded on both sides so "NVIDIA L4" does not claim "NVIDIA L40" (absent from the catalog).
    rx = rf"(?<![a-z0-9]){re.escape(pattern.lower())}(?![a-z0-9])"
    return re.search(rx, device_name.lower()) is not None


def lookup(device_name: str, catalog: list[GpuSpec] | None = None) -> GpuSpec | None:
    """The entry whose match string is the longest found in `device_name`; None if none is."""
    best: GpuSpec | None = None
    best_len = 0
    for spec in catalog if catalog is not None else _packaged():
        for m in spec.match:
            if len(m) > best_len and _matches(m, device_name):
                best, best_len = spec, len(m)
    return best


def catalog_spec(device_name: str, catalog: list[GpuSpec] | None = None) -> tuple[GpuSpec | None, str | None]:
    """The catalog entry whose peaks apply to this device, or None and why there is none."""
    spec = lookup(device_name, catalog)
    if spec is None:
        return None, f"no catalog entry matches {device_name!r}"
    if " MIG " in f" {device_name} ":  # a MIG slice has only part of the card's SMs and bandwidth
        return None, f"{device_name!r} is a MIG slice; the catalog holds whole-card peaks only"
    return spec, None


def peak_flops(spec: GpuSpec | None, dtype: str) -> float | None:
    """Dense peak in FLOP/s for `dtype`; None for no spec or a dtype the datasheet does not give."""
    if dtype not in PEAK_DTYPES:
        # A typo ("bfloat16") must not silently read as "no peak known".
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {list(PEAK_DTYPES)}")
    if spec is None:
        return None
    tflops = spec.peak_tflops.get(dtype)  # type: ignore[call-overload]
    return None if tflops is None else tflops * 1e12


def peak_bandwidth_bytes_per_s(spec: GpuSpec | None) -> float | None:
    """Datasheet DRAM bandwidth in bytes/s; None for no spec."""
    return None if spec is None else spec.mem_bandwidth_gbps * 1e9


def unknown_gpu(name: str, known: list[GpuSpec] | dict[str, GpuSpec]) -> str:
    """The message for a GPU id not in the catalog, with the closest ids (difflib, any case), or a
    device name's own entry ("NVIDIA H100 80GB HBM3" -> H100-SXM); else the known ids."""
    specs = list(known.values()) if isinstance(known, dict) else list(known)
    by_lower = {g.id.lower(): g.id for g in specs}
    if name.lower() in by_lower:  # only the case differs
        close = [by_lower[name.lower()]]
    else:
        close = [by_lower[c] for c in difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.5)]
    named = lookup(name, specs)
    if named is not None and named.id not in close:
        close.insert(0, named.id)
    if not close:
        return f"unknown GPU {name!r}; known: {', '.join(sorted(g.id for g in specs))}"
    quoted = [repr(c) for c in close[:3]]
    options = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
    return f"unknown GPU {name!r}; did you mean {options}?"
