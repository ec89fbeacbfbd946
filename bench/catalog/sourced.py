"""What every cost figure carries (a date and a source), site figures and their bounds, and TOML reading.

Shared by the cost catalog (prices.py), the owner profiles (profiles.py) and the dated market
figures (market.py). A bad value is a one-line `CatalogError` naming the file, the entry and the field.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bench.catalog import gpus
from bench.catalog.gpus import CatalogError
from bench.errors import first_error
from bench.results import files

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

_DATE_RE = re.compile(r"^\d{4}(-(0[1-9]|1[0-2])(-\d{2})?)?$")


def check_date(v: Any) -> Any:
    """A figure's date: YYYY, YYYY-MM or YYYY-MM-DD."""
    return gpus.check_date(v, _DATE_RE, "YYYY, YYYY-MM or YYYY-MM-DD")


class Sourced(BaseModel):
    """What every catalog figure carries: when it was true and where it comes from."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    date: str
    source: str = Field(min_length=1)
    source_url: str | None = Field(None, pattern=r"^https?://\S+$")
    weak: bool = False  # an estimate: unconfirmed, old, or the sources disagree; the note says why
    note: str | None = None

    _check_date = field_validator("date", mode="before")(check_date)

    @model_validator(mode="after")
    def _weak_says_why(self) -> Sourced:
        if self.weak and not (self.note and self.note.strip()):
            raise ValueError("a weak entry needs a note saying what is weak about it")
        return self


class SiteValue(Sourced):
    """One site figure (PUE, $/kWh, utilisation ...) with its date and source."""

    value: float


SITE_BOUNDS: dict[str, tuple[float, float, str]] = {
    # name: (low, high, meaning); low < value <= high unless the sets below say otherwise
    "pue": (1.0, 3.0, "power usage effectiveness: facility power / IT power"),
    "usd_per_kwh": (0.0, 1.0, "electricity price, $ per kWh"),
    "colo_usd_per_kw_month": (0.0, 2000.0, "colocation, $ per provisioned kW per month"),
    "depreciation_years": (0.25, 20.0, "years over which the capital is recovered; a quarter at least"),
    "cost_of_capital": (0.0, 1.0, "cost of capital per year (0: straight-line depreciation)"),
    "maintenance_share": (0.0, 1.0, "maintenance and support per year, share of the capital"),
    "utilisation": (0.0, 1.0, "share of wall-clock hours a GPU does useful work"),
}
# Over the hardware's life: optional; absent means 0 (no resale value, rents flat, no hours resold).
OPTIONAL_SITE_BOUNDS: dict[str, tuple[float, float, str]] = {
    "residual_share": (0.0, 1.0, "resale value at the end of the life, share of the capital"),
    "rent_decline": (-1.0, 1.0, "yearly fall of rental prices over the life (negative: a rise)"),
    "resale_usd_per_gpu_hour": (0.0, 1000.0, "$ per GPU-hour received for idle hours resold, after costs"),
    "resale_fill": (0.0, 1.0, "share of the idle hours actually resold"),
}
ALL_SITE_BOUNDS = {**SITE_BOUNDS, **OPTIONAL_SITE_BOUNDS}
_INCLUSIVE_LOW = {"depreciation_years", "pue", "cost_of_capital", "maintenance_share", "colo_usd_per_kw_month",
                  "usd_per_kwh", "residual_share", "resale_usd_per_gpu_hour", "resale_fill"}  # fmt: skip
_EXCLUSIVE_HIGH = {"residual_share", "rent_decline"}


def in_bounds(name: str, value: float) -> bool:
    """True when `value` is a value the site figure `name` may take."""
    low, high, _ = ALL_SITE_BOUNDS[name]
    ok_low = value >= low if name in _INCLUSIVE_LOW else value > low
    ok_high = value < high if name in _EXCLUSIVE_HIGH else value <= high
    return ok_low and ok_high


def bounds_text(name: str) -> str:
    """The interval a site figure may take, e.g. "[0.0, 1.0)" and its meaning."""
    low, high, meaning = ALL_SITE_BOUNDS[name]
    left = "[" if name in _INCLUSIVE_LOW else "("
    right = ")" if name in _EXCLUSIVE_HIGH else "]"
    return f"{left}{low}, {high}{right} ({meaning})"


def fail(label: str, msg: str) -> CatalogError:
    """A one-line catalog error naming the file (or other label)."""
    return CatalogError(" ".join(f"{label}: {msg}".split()))


def read_toml(path: Path | None, label: str, packaged: str | None = None) -> dict[str, Any]:
    """A packaged catalog file (by name) or the user's (by path), parsed; a one-line error otherwise."""
    try:
        text = (
            (resources.files("bench") / "catalog" / packaged).read_text(encoding="utf-8")
            if packaged
            else files.read_text_bounded(Path(path), files.limit_bytes(), "a catalog file")  # type: ignore[arg-type]
        )
    except OSError as e:
        raise fail(label, f"cannot read: {e.strerror or e}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise fail(label, f"invalid TOML: {e}") from None


def site_values(
    data: dict[str, Any], label: str, default_source: str | None, where: str = "site"
) -> dict[str, SiteValue]:
    """Site figures: a table with value, date and source, or (in a user's file) a bare number."""
    unknown = sorted(set(data) - set(ALL_SITE_BOUNDS))
    if unknown:
        raise fail(label, f"unknown site field(s) {unknown}; expected some of {sorted(ALL_SITE_BOUNDS)}")
    out: dict[str, SiteValue] = {}
    for name, raw in data.items():
        if isinstance(raw, (int, float)) and not isinstance(raw, bool) and default_source:
            raw = {"value": raw, "date": dt.date.today().isoformat(), "source": default_source}
        try:
            item = SiteValue.model_validate(raw)
        except ValidationError as e:
            raise fail(label, f"{where}.{name}: {first_error(e, 'value', show_input=True)}") from None
        if not in_bounds(name, item.value):
            raise fail(label, f"{where}.{name}: {item.value} is outside {bounds_text(name)}")
        out[name] = item
    return out
