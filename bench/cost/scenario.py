"""The catalog's figures meet the formulas: an owned GPU at the site, and a rent over the same life.

Every figure comes from the catalog's site (the packaged one, an owner profile, the user's files
or the command line), any of them replaced by an override: the sensitivity swings one at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from bench.catalog.prices import Catalog, Offer, packaged, with_profile
from bench.catalog.profiles import load_profiles
from bench.cost import fleet, life
from bench.cost.model import Owned, rented_usd_per_useful_hour
from bench.cost.subjects import Power

OVERRIDES = (
    "depreciation_years",
    "cost_of_capital",
    "pue",
    "usd_per_kwh",
    "maintenance_share",
    "capital",  # x the capital per GPU
    "residual_share",
    "rent_decline",
    "resale_usd_per_gpu_hour",
    "resale_fill",
)


def _site(cat: Catalog, name: str, overrides: dict[str, float]) -> float:
    """A site figure, or its override; an optional one (residual, rent decline, resale) is 0 when unset."""
    unknown = set(overrides) - set(OVERRIDES)
    if unknown:
        raise ValueError(f"unknown override(s) {sorted(unknown)}")
    return overrides[name] if name in overrides else cat.optional(name)


def owned_for(cat: Catalog, gpu_id: str, power: Power, **overrides: float) -> Owned | None:
    """The owned GPU at the catalog's site, with any site figure (or a capital multiplier) replaced."""
    server = cat.server_for(gpu_id)
    if server is None:
        return None

    def site(name: str) -> float:
        return _site(cat, name, overrides)

    return Owned(
        capital_usd=server.capital_per_gpu_usd * overrides.get("capital", 1.0),
        years=site("depreciation_years"),
        rate=site("cost_of_capital"),
        maintenance_share=site("maintenance_share"),
        colo_usd_per_kw_month=cat.value("colo_usd_per_kw_month"),
        provisioned_kw=server.provisioned_kw_per_gpu,
        pue=site("pue"),
        usd_per_kwh=site("usd_per_kwh"),
        active_kw=power.active_w / 1000,
        idle_kw=power.idle_w / 1000,
        residual_share=site("residual_share"),
        resale_usd_per_gpu_hour=site("resale_usd_per_gpu_hour"),
        resale_fill=site("resale_fill"),
    )


def rent_level(cat: Catalog, **overrides: float) -> float:
    """L(d): the level rent over the life as a multiple of today's price (1 when rents stay flat)."""
    decline = _site(cat, "rent_decline", overrides)
    if decline == 0:
        return 1.0
    return life.level_factor(
        decline, _site(cat, "cost_of_capital", overrides), _site(cat, "depreciation_years", overrides)
    )


def rented_useful(
    cat: Catalog, offer: Offer, utilisation: float, price_factor: float = 1.0, **overrides: float
) -> float:
    """The offer's level price per useful hour over the life: on demand as is, a committed term / u."""
    price = offer.usd_per_gpu_hour * price_factor * rent_level(cat, **overrides)
    return rented_usd_per_useful_hour(price, offer.committed, utilisation)


def break_even_decline(cat: Catalog, owned: Owned, offer: Offer, utilisation: float) -> float | None:
    """The yearly rent fall (negative: rise) at which renting this offer costs what owning does."""
    flat = rented_usd_per_useful_hour(offer.usd_per_gpu_hour, offer.committed, utilisation)
    target = owned.usd_per_useful_hour(utilisation) / flat  # L(d*) = owned / rented at flat rent
    return life.break_even_decline(target, owned.rate, owned.years)


def schedule_for(cat: Catalog, owned: Owned, offer: Offer, utilisation: float) -> life.Schedule:
    """Owned against this offer year by year over the life, per GPU, for the same useful hours."""
    operating = owned.net_usd_per_wall_hour(utilisation) - owned.capital_usd_per_hour()
    hours_paid = life.HOURS_PER_YEAR * (1.0 if offer.committed else utilisation)
    return life.schedule(
        owned.capital_usd,
        owned.residual_usd(),
        operating * life.HOURS_PER_YEAR,
        offer.usd_per_gpu_hour * hours_paid,
        cat.optional("rent_decline"),
        owned.rate,
        owned.years,
    )


def fleet_for(
    cat: Catalog, gpu_id: str, owned: Owned, reference: Offer | None, tokens_per_s: float, facility_mw: float
) -> fleet.Fleet:
    """A facility of `facility_mw` filled with this GPU at the site, owned and under the reference offer."""
    server = cat.server_for(gpu_id)
    if server is None:
        raise ValueError(f"no provisioned kW per GPU for {gpu_id} in the catalog")
    u = cat.value("utilisation")
    rented = rented_useful(cat, reference, u) if reference is not None else None
    return fleet.fleet(
        facility_mw,
        owned.pue,
        server.provisioned_kw_per_gpu,
        owned.capital_usd,
        owned.net_usd_per_wall_hour(u),
        rented,
        tokens_per_s,
        u,
    )


@dataclass(frozen=True)
class Calibration:
    """This profile's owned H100/H200/B200 against a published all-in owned cost per GPU-hour."""

    gpu: str
    owner: str
    published_usd_per_gpu_hour: float
    all_in_kw: float
    board_usd_per_wall_hour: float  # as tokenbench prices an unmeasured GPU: energy at the board's TDP
    all_in_usd_per_wall_hour: float  # energy at the published all-in power, as the published figure counts it
    source: str
    date: str

    @property
    def board_difference(self) -> float:
        return self.board_usd_per_wall_hour / self.published_usd_per_gpu_hour - 1

    @property
    def all_in_difference(self) -> float:
        return self.all_in_usd_per_wall_hour / self.published_usd_per_gpu_hour - 1


def calibration(cat: Catalog, gpu_id: str, owner: str | None = None) -> list[Calibration]:
    """The published owned costs for this GPU beside the owner's profile as packaged (default: the catalog's).

    The profile's own site figures, not the command line's or a --site file's; the catalog's server price."""
    owner = owner or cat.profile
    if owner not in load_profiles().profiles:
        return []
    cat = with_profile(replace(cat, site=packaged().site), owner)
    out = []
    for pub in cat.published_tco:
        if pub.gpu != gpu_id or pub.owner != owner or cat.server_for(gpu_id) is None:
            continue
        tdp_w, all_in_w = cat.gpus[gpu_id].tdp_w, pub.all_in_kw * 1000
        u = cat.value("utilisation")
        board = owned_for(cat, gpu_id, Power(tdp_w, tdp_w, "estimate", "estimate"))
        all_in = owned_for(cat, gpu_id, Power(all_in_w, all_in_w, "published all-in", "published all-in"))
        assert board is not None and all_in is not None
        out.append(Calibration(gpu_id, owner, pub.usd_per_gpu_hour, pub.all_in_kw, board.usd_per_wall_hour(u),
                               all_in.usd_per_wall_hour(u), pub.source, pub.date))  # fmt: skip
    return out
