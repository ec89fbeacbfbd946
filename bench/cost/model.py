"""The cost model's formulas: owning a GPU against renting it, per hour and per token. Pure arithmetic.

DESIGN: cost model. No catalog, no records: figures in, figures out. Where the inputs come from
is bench/cost/subjects.py (what is priced) and bench/cost/pricing.py (the catalog's figures).

- Capital recovery factor CRF(r, n) = r(1+r)^n / ((1+r)^n - 1); 1/n at r = 0 (straight line).
- Owned capital per year = (P - S/(1+r)^n) x CRF(r, n), S = residual share x P (the resale at end of life).
- Owned $ per wall-clock GPU-hour = capital per year / 8760 + P x maintenance share / 8760
  + colocation $/kW-month x provisioned kW x 12 / 8760
  + energy: (active kW x u + idle kW x (1 - u)) x PUE x $/kWh.
- Reselling idle hours: h = (1 - u) x fill of the wall hours are sold at the resale price p and draw
  the active power: net $ per wall hour = $ per wall hour + h x (E_active - E_idle) - h x p.
- $ per useful GPU-hour = net $ per wall hour / u (an idle hour is paid for too).
- $/Mtok = $ per useful GPU-hour / (tokens/s per GPU x 3600 / 1e6).
- Rented $ per useful GPU-hour: the price on demand (paid per hour used); price / u on a 1- or
  3-year term (every hour of the term is paid, so it idles like an owned GPU).
- Break-even against an on-demand price R: owning is cheaper above
  u* = (F + E_idle - g) / (R + E_idle - E_active - g), with F the fixed $ per wall hour, E the energy
  $ per hour at the active and idle power and g = fill x (p - E_active + E_idle) the margin per idle
  hour from reselling it (0 without resale). Against a committed price both sides pay every hour:
  owning is cheaper while F + E_idle - g + (E_active - E_idle + g) u < R.
- Months to break even (discounted payback at the cost of capital r): with S the monthly saving
  (rent paid - maintenance, colocation and energy) and r_m = (1 + r)^(1/12) - 1, the n at which
  S's present value repays the capital C: n = -ln(1 - r_m C / S) / ln(1 + r_m); C / S when r = 0.
- Training run: FLOPs = 6 N D; GPU-hours = FLOPs / (MFU x dense peak) / 3600; days = GPU-hours / GPUs / 24.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.catalog.prices import Offer

HOURS_PER_YEAR = 8760.0  # 365 x 24: capital and colocation are spread over every hour of the year
HOURS_PER_MONTH = HOURS_PER_YEAR / 12


def crf(rate: float, years: float) -> float:
    """Capital recovery factor: the share of the capital paid each year to repay it with interest."""
    if years <= 0:
        raise ValueError(f"depreciation years must be positive, got {years}")
    x = years * math.log1p(rate)  # ln (1+r)^n, exact for tiny r
    if x == 0:
        return 1.0 / years  # straight-line depreciation: the limit of the annuity formula as r -> 0
    # annuity: CRF(r, n) = r (1+r)^n / ((1+r)^n - 1) = r / (1 - (1+r)^-n); expm1 keeps tiny r n exact (-> 1/n)
    return -rate / math.expm1(-x)


def check_utilisation(u: float) -> float:
    """`u` if it is a utilisation in (0, 1]; a ValueError otherwise (a $ per useful hour divides by it)."""
    if not 0 < u <= 1:
        raise ValueError(f"utilisation must be in (0, 1], got {u}")
    return u


@dataclass(frozen=True)
class Owned:
    """One owned GPU and its site (per GPU: its share of the server and the network)."""

    capital_usd: float  # per GPU, server and network share included
    years: float  # depreciation period: the useful life
    rate: float  # cost of capital per year
    maintenance_share: float  # per year, of the capital
    colo_usd_per_kw_month: float
    provisioned_kw: float  # all-in power provisioned per GPU (server share, cooling excluded)
    pue: float
    usd_per_kwh: float
    active_kw: float  # measured mean power while working
    idle_kw: float  # measured idle power
    residual_share: float = 0.0  # resale value at the end of the life, share of the capital
    resale_usd_per_gpu_hour: float = 0.0  # received per idle hour resold, after the seller's costs
    resale_fill: float = 0.0  # share of the idle hours actually resold

    def residual_usd(self) -> float:
        """S = residual share x P: what the GPU fetches at the end of its life."""
        return self.capital_usd * self.residual_share

    def capital_usd_per_year(self) -> float:
        """Capital recovery: (P - S/(1+r)^n) x CRF(r, n), the residual's present value netted off."""
        return (self.capital_usd - self.residual_usd() / (1.0 + self.rate) ** self.years) * crf(self.rate, self.years)

    def capital_usd_per_hour(self) -> float:
        """Capital recovery per year spread over every hour of the year."""
        return self.capital_usd_per_year() / HOURS_PER_YEAR

    def maintenance_usd_per_hour(self) -> float:
        """Maintenance: capital x maintenance share per year / 8760."""
        return self.capital_usd * self.maintenance_share / HOURS_PER_YEAR

    def colo_usd_per_hour(self) -> float:
        """Colocation: $/kW-month x provisioned kW x 12 / 8760."""
        return self.colo_usd_per_kw_month * self.provisioned_kw * 12 / HOURS_PER_YEAR

    def fixed_usd_per_hour(self) -> float:
        """What an owned GPU costs per wall-clock hour whether it works or not (energy aside)."""
        return self.capital_usd_per_hour() + self.maintenance_usd_per_hour() + self.colo_usd_per_hour()

    def energy_usd_per_hour(self, kw: float) -> float:
        """Energy at a steady draw: kW x PUE x $/kWh."""
        return kw * self.pue * self.usd_per_kwh

    def usd_per_wall_hour(self, utilisation: float) -> float:
        """Fixed cost plus energy, per wall-clock hour at `utilisation` (before any resale)."""
        return self.fixed_usd_per_hour() + self.energy_usd_per_wall_hour(utilisation)

    def energy_usd_per_wall_hour(self, utilisation: float) -> float:
        """Energy per wall-clock hour: (active kW x u + idle kW x (1 - u)) x PUE x $/kWh."""
        u = check_utilisation(utilisation)
        return self.energy_usd_per_hour(self.active_kw) * u + self.energy_usd_per_hour(self.idle_kw) * (1 - u)

    def resold_share(self, utilisation: float) -> float:
        """h = (1 - u) x fill: the share of wall hours sold to others."""
        return (1.0 - check_utilisation(utilisation)) * self.resale_fill

    def resale_energy_usd_per_wall_hour(self, utilisation: float) -> float:
        """The resold hours draw the active power, not the idle: h x (E_active - E_idle)."""
        extra = self.energy_usd_per_hour(self.active_kw) - self.energy_usd_per_hour(self.idle_kw)
        return self.resold_share(utilisation) * extra

    def resale_usd_per_wall_hour(self, utilisation: float) -> float:
        """Revenue from resold idle hours per wall hour: h x resale price."""
        return self.resold_share(utilisation) * self.resale_usd_per_gpu_hour

    def net_usd_per_wall_hour(self, utilisation: float) -> float:
        """$ per wall hour + energy of resold hours - resale revenue per wall hour."""
        resale = self.resale_energy_usd_per_wall_hour(utilisation) - self.resale_usd_per_wall_hour(utilisation)
        return self.usd_per_wall_hour(utilisation) + resale

    def usd_per_useful_hour(self, utilisation: float) -> float:
        """$ per hour of useful work: net $ per wall hour / u (an idle hour is paid for too)."""
        return self.net_usd_per_wall_hour(utilisation) / check_utilisation(utilisation)

    def wall_hour_line(self) -> tuple[float, float]:
        """(a, b) with net $ per wall hour = a + b u: a = F + E_idle - g, b = E_active - E_idle + g."""
        active, idle = self.energy_usd_per_hour(self.active_kw), self.energy_usd_per_hour(self.idle_kw)
        margin = self.resale_fill * (self.resale_usd_per_gpu_hour - active + idle)  # g, per idle hour
        return self.fixed_usd_per_hour() + idle - margin, active - idle + margin

    def break_even_utilisation(self, rent_usd_per_hour: float) -> float | None:
        """The utilisation above which owning is cheaper per useful hour than an on-demand rent; else None."""
        a, b = self.wall_hour_line()
        side, u = cheaper_where(a, b - rent_usd_per_hour)  # u* = (F + E_idle - g) / (R + E_idle - E_active - g)
        return u if side == "above" else None


def cheaper_where(a: float, b: float) -> tuple[str, float | None]:
    """Where a + b u < 0 for u in (0, 1]: ("any", None), ("never", None), ("above", u*) or ("below", u*)."""
    at_zero, at_one = a, a + b  # a line: negative on the whole interval iff at both ends
    if at_zero < 0 and at_one < 0:
        return "any", None
    if at_zero >= 0 and at_one >= 0:
        return "never", None
    return ("above" if b < 0 else "below"), -a / b


def usd_per_mtok(usd_per_gpu_hour: float, tokens_per_s: float) -> float:
    """$ per million tokens at a $ per (useful) GPU-hour and a rate in tokens/s per GPU."""
    if tokens_per_s <= 0:
        raise ValueError(f"tokens/s must be positive, got {tokens_per_s}")
    return usd_per_gpu_hour / (tokens_per_s * 3600 / 1e6)  # $/Mtok = $ per hour / Mtok per hour


def rented_usd_per_useful_hour(usd_per_gpu_hour: float, committed: bool, utilisation: float) -> float:
    """On demand only used hours are paid; on a committed term every hour is, used or not."""
    return usd_per_gpu_hour / check_utilisation(utilisation) if committed else usd_per_gpu_hour


def cost_ratio(owned: Owned, offer: Offer, utilisation: float, price_factor: float = 1.0) -> float:
    """Owned / rented cost per useful hour; below 1 owning is cheaper.

    The same ratio holds for $/Mtok at any token rate, since both divide by the same tokens."""
    rent = rented_usd_per_useful_hour(offer.usd_per_gpu_hour * price_factor, offer.committed, utilisation)
    return owned.usd_per_useful_hour(utilisation) / rent


@dataclass(frozen=True)
class BreakEven:
    """Owned against one rental price: where owning gets cheaper, and how soon it pays back."""

    verdict: str  # e.g. "owning cheaper above 41%", "renting cheaper at any utilisation"
    utilisation: float | None  # the crossing point in (0, 1]; None when there is none
    owning_cheaper_at_site: bool  # at the site's utilisation
    payback_months: float | None  # None when owning never saves money each month
    decline: float | None = None  # the yearly rent fall beyond which owning loses (bench/cost/life.py)


def break_even(owned: Owned, price: float, committed: bool, utilisation: float) -> BreakEven:
    """Owned against a rental price per GPU-hour: the crossing utilisation, the verdict and the payback."""
    a, b = owned.wall_hour_line()  # owned $ per wall hour = a + b u
    cheaper_now = owned.usd_per_useful_hour(utilisation) < rented_usd_per_useful_hour(price, committed, utilisation)
    # on demand: a + b u < R u; committed: both pay every hour, so a + b u < R
    side, crossing = cheaper_where(a, b - price) if not committed else cheaper_where(a - price, b)
    verdict = {
        "any": "owning cheaper at any utilisation",
        "never": "renting cheaper at any utilisation",
    }.get(side, f"owning cheaper {side} {crossing or 0:.0%}")
    rent_per_month = price * HOURS_PER_MONTH * (1.0 if committed else utilisation)
    operating = owned.net_usd_per_wall_hour(utilisation) - owned.capital_usd_per_hour()
    saving_per_month = rent_per_month - operating * HOURS_PER_MONTH  # S = rent - maintenance, colocation, energy
    return BreakEven(verdict, crossing, cheaper_now, payback_months(owned.capital_usd, saving_per_month, owned.rate))


def payback_months(capital: float, saving_per_month: float, rate: float) -> float | None:
    """Months of savings whose present value at the cost of capital repays the capital; None if never."""
    if saving_per_month <= 0:
        return None
    r_m = math.expm1(math.log1p(rate) / 12)  # the monthly rate equivalent to the yearly cost of capital
    if r_m == 0:
        return capital / saving_per_month  # n = C / S
    if r_m * capital >= saving_per_month:  # the interest alone eats the saving
        return None
    return -math.log1p(-r_m * capital / saving_per_month) / math.log1p(r_m)  # n = -ln(1 - r_m C / S) / ln(1 + r_m)


def training_flops(params: float, tokens: float) -> float:
    """FLOPs of a training run: 6 N D (forward 2 N D, backward 4 N D; Kaplan et al. 2020)."""
    return 6.0 * params * tokens


def training_gpu_hours(flops: float, mfu: float, peak_flops: float) -> float:
    """GPU-hours to do `flops` at a model FLOPs utilisation of a dense peak: FLOPs / (MFU x peak) / 3600."""
    return flops / (mfu * peak_flops) / 3600
