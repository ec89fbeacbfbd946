"""One figure at a time over its catalog range, and the one-line decision: which way, and what flips it.

The ratio owned / rented cost per useful hour (the same per token) against the reference offer,
the cheapest per useful hour: below 1 owning is cheaper. The decision names the exact points
where it flips (the rent, the utilisation, the yearly rent decline) and the figures whose catalog
range crosses 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.catalog.prices import SENSITIVITY_KEYS, Catalog, Offer
from bench.cost.model import Owned, break_even
from bench.cost.scenario import break_even_decline, owned_for, rent_level, rented_useful
from bench.cost.subjects import Power

FIGURE_TEXT = {
    "depreciation_years": "life",
    "utilisation": "utilisation",
    "pue": "PUE",
    "usd_per_kwh": "electricity price",
    "maintenance_share": "maintenance",
    "rental_price": "the rent",
    "capital": "the capital",
    "residual_share": "residual value",
    "rent_decline": "rent decline",
    "resale_price": "resale price",
}


@dataclass(frozen=True)
class Sensitivity:
    """One site figure swung over its range, the rest held: owned / rented cost at each end."""

    parameter: str
    low: float
    high: float
    ratio_low: float  # owned / rented cost per useful hour (= per token) at `low`; below 1 owning is cheaper
    ratio_high: float
    owned_usd_per_useful_hour_low: float
    owned_usd_per_useful_hour_high: float


def _swing(cat: Catalog, name: str, value: float) -> tuple[float, float, dict[str, float]]:
    """(utilisation, rent multiplier, site overrides) with one figure set to `value`."""
    if name == "utilisation":
        return value, 1.0, {}
    if name == "rental_price":
        return cat.value("utilisation"), value, {}
    if name == "resale_price":
        price = cat.optional("resale_usd_per_gpu_hour") * value
        return cat.value("utilisation"), 1.0, {"resale_usd_per_gpu_hour": price}
    return cat.value("utilisation"), 1.0, {name: value}


def sensitivity(cat: Catalog, gpu_id: str, power: Power, offer: Offer) -> list[Sensitivity]:
    """One at a time over the catalog's ranges, the rest held at the site figures.

    The resale price is swung only where idle hours are resold (it moves nothing otherwise)."""
    resold = cat.optional("resale_fill") > 0 and cat.optional("resale_usd_per_gpu_hour") > 0
    rows = []
    for name in SENSITIVITY_KEYS:
        if name == "resale_price" and not resold:
            continue
        low, high = getattr(cat.sensitivity, name)
        ends = []
        for value in (low, high):
            u, factor, overrides = _swing(cat, name, value)
            owned = owned_for(cat, gpu_id, power, **overrides)
            assert owned is not None
            rent = rented_useful(cat, offer, u, factor, **overrides)
            ends.append((owned.usd_per_useful_hour(u) / rent, owned.usd_per_useful_hour(u)))
        rows.append(Sensitivity(name, low, high, ends[0][0], ends[1][0], ends[0][1], ends[1][1]))
    return rows


@dataclass(frozen=True)
class Decision:
    """Owned against the reference offer at the site: which is cheaper, and what would flip it."""

    gpu: str
    owning_wins: bool
    owned_usd_per_useful_hour: float
    rented_usd_per_useful_hour: float  # the reference offer's level price per useful hour
    offer: str  # "provider term $price"
    why: str  # "your quote" or "the cheapest offer"
    utilisation: float
    years: float
    rent_to_flip: float  # the reference offer's $/GPU-hour (today's) at which the verdict flips
    break_even_utilisation: float | None
    utilisation_verdict: str
    break_even_decline: float | None
    flipped_by: list[str] = field(default_factory=list)  # catalog ranges that cross 1, e.g. "life at 2"

    def text(self) -> str:
        """The headline: one line."""
        way = "owning is cheaper" if self.owning_wins else "renting is cheaper"
        owned, rented = self.owned_usd_per_useful_hour, self.rented_usd_per_useful_hour
        places = 2 if round(owned, 2) != round(rented, 2) else 4  # cents, unless they hide the difference
        head = (
            f"{self.gpu}: {way}: owned ${owned:.{places}f} against rented "
            f"${rented:.{places}f} per useful GPU-hour ({self.offer}, {self.why}), at "
            f"{self.utilisation:.0%} utilisation over {self.years:g} years."
        )
        flips = [f"the rent {'below' if self.owning_wins else 'above'} ${self.rent_to_flip:.2f}/GPU-hour"]
        if self.break_even_decline is not None:
            d = self.break_even_decline
            if d >= 0:
                flips.append(f"rents falling {'faster' if self.owning_wins else 'slower'} than {d:.0%} a year")
            else:
                flips.append(f"rents rising {'less' if self.owning_wins else 'more'} than {-d:.0%} a year")
        if self.break_even_utilisation is not None:
            above = "above" in self.utilisation_verdict  # owning cheaper above u*; or below it (energy tips it)
            word = "below" if self.owning_wins == above else "above"
            flips.append(f"utilisation {word} {self.break_even_utilisation:.0%}")
        ranges = (
            f"within the catalog ranges, {'; '.join(self.flipped_by)}"
            if self.flipped_by
            else "no single figure over its catalog range flips it"
        )
        return f"{head} It flips with {', '.join(flips)}; {ranges}."


def decide(cat: Catalog, gpu_id: str, owned: Owned, offer: Offer, rows: list[Sensitivity], why: str) -> Decision:
    """The decision against `offer` at the site, with its break-even points and flipping ranges."""
    u = cat.value("utilisation")
    owned_hour = owned.usd_per_useful_hour(u)
    rented_hour = rented_useful(cat, offer, u)
    owning_wins = owned_hour < rented_hour
    be = break_even(owned, offer.usd_per_gpu_hour * rent_level(cat), offer.committed, u)
    flipped_by = []
    for s in sorted(rows, key=lambda s: -abs(s.ratio_high - s.ratio_low)):  # widest swing first
        ends = [(end, v) for end, v, ratio in (("low", s.low, s.ratio_low), ("high", s.high, s.ratio_high))
                if (ratio < 1) != owning_wins]  # fmt: skip
        if s.parameter == "rental_price" or not ends:
            continue
        where = f"anywhere in {s.low:g} to {s.high:g}" if len(ends) == 2 else f"at {ends[0][1]:g} ({ends[0][0]} end)"
        flipped_by.append(f"{FIGURE_TEXT[s.parameter]} {where}")
    if len(flipped_by) > 3:
        flipped_by = [*flipped_by[:3], f"{len(flipped_by) - 3} more in the sensitivity table"]
    return Decision(
        gpu=gpu_id,
        owning_wins=owning_wins,
        owned_usd_per_useful_hour=owned_hour,
        rented_usd_per_useful_hour=rented_hour,
        offer=f"{offer.name} ${offer.usd_per_gpu_hour:.2f}/GPU-hour{'*' if offer.weak else ''}",
        why=why,
        utilisation=u,
        years=owned.years,
        rent_to_flip=offer.usd_per_gpu_hour * owned_hour / rented_hour,
        break_even_utilisation=be.utilisation,
        utilisation_verdict=be.verdict,
        break_even_decline=break_even_decline(cat, owned, offer, u),
        flipped_by=flipped_by,
    )
