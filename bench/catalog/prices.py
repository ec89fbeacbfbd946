"""The cost catalog: rental offers, owned server prices and site defaults, each dated and sourced.

Packaged data lives in `bench/catalog/` (offers.toml, servers.toml, site.toml); GPU models and
their TDP come from gpus.toml, the same table the harness uses for fractions of peak. A user
extends or overrides it with their own files:

- `--catalog FILE` (repeatable): `[[gpu]]`, `[[offer]]` and `[[server]]` tables. An entry whose
  id is already known replaces it; a new id is added. Later files win. A user's `[[server]]` for a
  GPU takes precedence over the packaged ones for that GPU, whatever it costs: it is the user's quote.
- `--site FILE`: site figures (`pue = 1.2`, or a table with value, date and source) and a
  `[sensitivity]` table; each named field replaces the packaged one, the rest stay.
- `--profile NAME`: an owner profile's site figures (profiles.toml), applied before the files.

Every field is validated; a bad one is a one-line `CatalogError` naming the file, entry and field.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bench.catalog import gpus
from bench.catalog.gpus import CatalogError, GpuSpec
from bench.catalog.profiles import DEFAULT_PROFILE, PublishedTco, load_profiles
from bench.catalog.sourced import (
    ALL_SITE_BOUNDS,
    OPTIONAL_SITE_BOUNDS,
    SITE_BOUNDS,
    SiteValue,
    Sourced,
    fail,
    in_bounds,
    read_toml,
    site_values,
)
from bench.errors import first_error
from bench.text import offer_name

__all__ = ["OPTIONAL_SITE_BOUNDS", "SITE_BOUNDS", "Catalog", "CatalogError", "Offer", "Server", "SiteValue", "Sourced"]

Term = Literal["on-demand", "1-year", "3-year"]
COMMITTED_TERMS = ("1-year", "3-year")  # paid every hour of the term, used or not
_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class Offer(Sourced):
    """A rental price for one GPU: provider, term, $ per GPU-hour."""

    id: str = Field(pattern=_ID)
    gpu: str
    provider: str = Field(min_length=1)
    product: str = Field(min_length=1)  # instance type or plan, e.g. "p5.48xlarge (8x H100 SXM)"
    term: Term
    usd_per_gpu_hour: float = Field(gt=0)

    @property
    def committed(self) -> bool:
        """True for a 1- or 3-year term: every hour of it is paid, used or not."""
        return self.term in COMMITTED_TERMS

    @property
    def name(self) -> str:
        """Provider and term, the term once: "Lambda on-demand", "InferenceX 3-year rental"."""
        return offer_name(self.provider, self.term)


class Server(Sourced):
    """The price of owning one GPU: its server's price per GPU plus the network's share."""

    id: str = Field(pattern=_ID)
    gpu: str
    product: str = Field(min_length=1)
    gpus: int = Field(gt=0)  # GPUs per server
    usd: float = Field(gt=0)  # the whole server, GPUs included
    network_share: float = Field(ge=0, lt=1)  # of the whole cluster's cost: scale-out network, cables
    provisioned_kw_per_gpu: float = Field(gt=0)  # all-in IT power per GPU that colocation bills

    @property
    def capital_per_gpu_usd(self) -> float:
        """Server price / GPUs, grossed up so the network is `network_share` of the total."""
        return self.usd / self.gpus / (1.0 - self.network_share)


SENSITIVITY_KEYS = (
    "depreciation_years",
    "utilisation",
    "pue",
    "usd_per_kwh",
    "maintenance_share",
    "rental_price",
    "capital",
    "residual_share",
    "rent_decline",
    "resale_price",
)
_MULTIPLIERS = ("rental_price", "capital", "resale_price")  # x the price, the capital, the resale price


class Sensitivity(BaseModel):
    """One-at-a-time ranges: absolute [low, high] for site figures, multipliers for prices."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    depreciation_years: tuple[float, float]
    utilisation: tuple[float, float]
    pue: tuple[float, float]
    usd_per_kwh: tuple[float, float]
    maintenance_share: tuple[float, float]
    rental_price: tuple[float, float]  # x the offer's price
    capital: tuple[float, float]  # x the capital per GPU
    residual_share: tuple[float, float]
    rent_decline: tuple[float, float]  # a fall per year; negative: a rise
    resale_price: tuple[float, float]  # x the resale price (moves nothing when no hours are resold)
    note: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Sensitivity:
        for key in SENSITIVITY_KEYS:
            low, high = getattr(self, key)
            # a site figure that may be 0 (no energy cost, no maintenance) may have a range from 0
            positive = key in _MULTIPLIERS or (key in SITE_BOUNDS and not in_bounds(key, 0.0))
            if not (0 < low <= high if positive else low <= high):
                raise ValueError(f"{key}: expected {'0 < ' if positive else ''}low <= high, got [{low}, {high}]")
            if key in ALL_SITE_BOUNDS:  # a site figure's range must hold values the site figure may take
                bottom, top, meaning = ALL_SITE_BOUNDS[key]
                if low < bottom or high > top or (key in OPTIONAL_SITE_BOUNDS and high >= top):
                    raise ValueError(f"{key}: [{low}, {high}] goes outside [{bottom}, {top}] ({meaning})")
        return self


@dataclass(frozen=True)
class Catalog:
    """Everything `tokenbench cost` prices with, merged from the packaged files and the user's."""

    gpus: dict[str, GpuSpec]
    offers: dict[str, Offer]
    servers: dict[str, Server]
    site: dict[str, SiteValue]
    sensitivity: Sensitivity
    files: tuple[str, ...] = field(default=())  # user files applied, in order
    profile: str = DEFAULT_PROFILE  # the owner profile whose site figures stand (bench/catalog/profiles.toml)
    published_tco: tuple[PublishedTco, ...] = ()  # published owned $/GPU-hour to calibrate the profiles against
    user_servers: tuple[tuple[str, str], ...] = ()  # (server id, file) of each [[server]] from the user's files

    def offers_for(self, gpu_id: str) -> list[Offer]:
        """The rental offers for one catalog GPU, cheapest per GPU-hour first."""
        return sorted((o for o in self.offers.values() if o.gpu == gpu_id), key=lambda o: o.usd_per_gpu_hour)

    def server_for(self, gpu_id: str) -> Server | None:
        """The owned price for this GPU: the user's own entries for it where there are any (a quote
        wins over a listing, whatever it costs), else the packaged ones; the cheapest per GPU of those."""
        found = [s for s in self.servers.values() if s.gpu == gpu_id]
        mine = [s for s in found if self.server_file(s.id) is not None]
        return min(mine or found, key=lambda s: s.capital_per_gpu_usd) if found else None

    def server_file(self, server_id: str) -> str | None:
        """The user's file a [[server]] entry came from (the last one to name it); None: packaged."""
        return next((f for i, f in reversed(self.user_servers) if i == server_id), None)

    def value(self, name: str) -> float:
        """A site figure's value, e.g. value("utilisation")."""
        return self.site[name].value

    def optional(self, name: str) -> float:
        """An optional site figure over the life (residual_share, rent_decline, resale ...); 0 when not set."""
        return self.site[name].value if name in self.site else 0.0

    def gpu_list(self) -> list[GpuSpec]:
        """Every GPU entry, packaged and the user's, for a lookup by device name."""
        return list(self.gpus.values())


def _entries(data: dict[str, Any], key: str, label: str) -> list[Any]:
    entries = data.get(key, [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise fail(label, f"{key}: expected [[{key}]] tables")
    return entries


def _validate(model: type[BaseModel], entries: list[Any], kind: str, label: str) -> list[Any]:
    out: list[Any] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(entries):
        where = f"{kind}[{i}]" + (f" ({entry['id']})" if isinstance(entry.get("id"), str) else "")
        try:
            item = model.model_validate(entry)
        except ValidationError as e:
            raise fail(label, f"{where}: {first_error(e, 'entry', show_input=True)}") from None
        if item.id in seen:  # type: ignore[attr-defined]
            raise fail(label, f"{where}: id: duplicate id (also {kind}[{seen[item.id]}])")  # type: ignore[attr-defined]
        seen[item.id] = i  # type: ignore[attr-defined]
        out.append(item)
    return out


def _check_gpus(items: list[Offer | Server], known: dict[str, GpuSpec], kind: str, label: str) -> None:
    for i, item in enumerate(items):
        if item.gpu not in known:
            raise fail(label, f"{kind}[{i}] ({item.id}): gpu: {gpus.unknown_gpu(item.gpu, known)}")


def _sensitivity(data: Any, label: str) -> Sensitivity:
    try:
        return Sensitivity.model_validate(data)
    except ValidationError as e:
        raise fail(label, f"sensitivity: {first_error(e, 'sensitivity', show_input=True)}") from None


@functools.lru_cache(maxsize=1)
def packaged() -> Catalog:
    """The catalog shipped with tokenbench (parsed once)."""
    known = {g.id: g for g in gpus.load_catalog()}
    offers_label, servers_label, site_label = (f"bench/catalog/{n}.toml" for n in ("offers", "servers", "site"))
    offers = _validate(
        Offer, _entries(read_toml(None, offers_label, "offers.toml"), "offer", offers_label), "offer", offers_label
    )
    servers = _validate(
        Server,
        _entries(read_toml(None, servers_label, "servers.toml"), "server", servers_label),
        "server",
        servers_label,
    )
    _check_gpus(offers, known, "offer", offers_label)
    _check_gpus(servers, known, "server", servers_label)
    site_data = read_toml(None, site_label, "site.toml")
    site = site_values(site_data.get("site", {}), site_label, default_source=None)
    missing = sorted(set(SITE_BOUNDS) - set(site))
    if missing:
        raise fail(site_label, f"site: missing {missing}")
    return Catalog(
        gpus=known,
        offers={o.id: o for o in offers},
        servers={s.id: s for s in servers},
        site=site,
        sensitivity=_sensitivity(site_data.get("sensitivity"), site_label),
        published_tco=tuple(load_profiles().published),
    )


def load(
    catalog_files: list[Path] | None = None, site_files: list[Path] | None = None, profile: str | None = None
) -> Catalog:
    """The packaged catalog, an owner profile's site figures, then the user's catalog and site files, in order."""
    cat = packaged()
    if profile is not None:
        cat = with_profile(cat, profile)
    for path in catalog_files or []:
        cat = _apply_catalog_file(cat, path)
    for path in site_files or []:
        cat = _apply_site_file(cat, path)
    return cat


def with_profile(cat: Catalog, name: str) -> Catalog:
    """The catalog with an owner profile's site figures in place of the packaged ones (the rest stay)."""
    profiles = load_profiles().profiles
    if name not in profiles:
        raise CatalogError(f"unknown profile {name!r}; known: {', '.join(profiles)}")
    return replace(cat, site={**cat.site, **profiles[name].site}, profile=name)


def _apply_catalog_file(cat: Catalog, path: Path) -> Catalog:
    label = str(path)
    data = read_toml(path, label)
    unknown = sorted(set(data) - {"gpu", "offer", "server"})
    if unknown:
        hint = " (site figures go in a --site file)" if set(unknown) & {"site", "sensitivity"} else ""
        raise fail(label, f"unknown top-level key(s) {unknown}; expected [[gpu]], [[offer]], [[server]]{hint}")
    if not any(data.get(k) for k in ("gpu", "offer", "server")):
        raise fail(label, "no [[gpu]], [[offer]] or [[server]] tables")
    gpu_entries = _entries(data, "gpu", label)
    new_gpus = gpus.parse_entries(gpu_entries, label) if gpu_entries else []
    known = {**cat.gpus, **{g.id: g for g in new_gpus}}
    offers = _validate(Offer, _entries(data, "offer", label), "offer", label)
    servers = _validate(Server, _entries(data, "server", label), "server", label)
    _check_gpus(offers, known, "offer", label)
    _check_gpus(servers, known, "server", label)
    return replace(
        cat,
        gpus=known,
        offers={**cat.offers, **{o.id: o for o in offers}},
        servers={**cat.servers, **{s.id: s for s in servers}},
        files=(*cat.files, label),
        user_servers=(*cat.user_servers, *((s.id, label) for s in servers)),
    )


def _apply_site_file(cat: Catalog, path: Path) -> Catalog:
    label = str(path)
    data = read_toml(path, label)
    sens = data.pop("sensitivity", None)
    if "site" in data and isinstance(data["site"], dict) and len(data) == 1:
        data = data["site"]  # a [site] table, as in the packaged file, is accepted too
    site = {**cat.site, **site_values(data, label, default_source=f"your site file {label}")}
    sensitivity = cat.sensitivity
    if sens is not None:
        if not isinstance(sens, dict):
            raise fail(label, "sensitivity: expected a [sensitivity] table")
        sensitivity = _sensitivity({**cat.sensitivity.model_dump(), **sens}, label)
    return replace(cat, site=site, sensitivity=sensitivity, files=(*cat.files, label))


def future_dated(cat: Catalog, today: dt.date | None = None) -> list[str]:
    """One line per offer, server or site figure dated after `today`: a price nobody has seen yet."""
    now = (today or dt.date.today()).isoformat()
    entries = [*(("offer", k, v) for k, v in cat.offers.items()), *(("server", k, v) for k, v in cat.servers.items()),
               *(("site", k, v) for k, v in cat.site.items())]  # fmt: skip
    return [
        f"{kind} {key!r} is dated {item.date}, after today ({now}): check its date and source"
        for kind, key, item in entries
        if item.date > now[: len(item.date)]
    ]


def with_site_value(cat: Catalog, name: str, value: float, source: str) -> Catalog:
    """The catalog with one site figure replaced (validated like a --site file's)."""
    item = site_values({name: value}, source, default_source=source)[name]
    return replace(cat, site={**cat.site, name: item})
