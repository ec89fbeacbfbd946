"""Cost per token: owning GPUs against renting them (DESIGN: cost model). Pure arithmetic.

Work in progress for the cost-per-token issue: the formulas, tested against hand-computed values;
the catalog, the CLI and the plots come next.

- Capital recovery factor CRF(r, n) = r(1+r)^n / ((1+r)^n - 1); 1/n at r = 0 (straight line).
- Owned $ per wall-clock GPU-hour = capital x (CRF + maintenance share) / 8760
  + colocation $/kW-month x provisioned kW x 12 / 8760
  + energy: (active kW x u + idle kW x (1 - u)) x PUE x $/kWh.
- $ per useful GPU-hour = $ per wall hour / u (an idle hour is paid for too).
- $/Mtok = $ per useful GPU-hour / (tokens/s per GPU x 3600 / 1e6).
- Break-even utilisation against a rental price R: the u at which owned $ per useful hour = R,
  u* = (F + E_idle) / (R + E_idle - E_active), with F the fixed $ per wall hour and E the energy
  $ per hour at the active and idle power.
"""

from __future__ import annotations

from dataclasses import dataclass

HOURS_PER_YEAR = 8760.0


def crf(rate: float, years: float) -> float:
    """Capital recovery factor: the share of the capital paid each year to repay it with interest."""
    if years <= 0:
        raise ValueError(f"depreciation years must be positive, got {years}")
    if rate == 0:
        return 1.0 / years
    g = (1.0 + rate) ** years
    return rate * g / (g - 1.0)


@dataclass(frozen=True)
class Owned:
    """One owned GPU and its site (per GPU: its share of the server and the network)."""

    capital_usd: float  # per GPU, server and network share included
    years: float  # depreciation period
    rate: float  # cost of capital per year
    maintenance_share: float  # per year, of the capital
    colo_usd_per_kw_month: float
    provisioned_kw: float  # all-in power provisioned per GPU (server share, cooling excluded)
    pue: float
    usd_per_kwh: float
    active_kw: float  # measured mean power while working
    idle_kw: float  # measured idle power

    def fixed_usd_per_hour(self) -> float:
        capital = self.capital_usd * (crf(self.rate, self.years) + self.maintenance_share) / HOURS_PER_YEAR
        return capital + self.colo_usd_per_kw_month * self.provisioned_kw * 12 / HOURS_PER_YEAR

    def energy_usd_per_hour(self, kw: float) -> float:
        return kw * self.pue * self.usd_per_kwh

    def usd_per_wall_hour(self, utilisation: float) -> float:
        u = _utilisation(utilisation)
        active, idle = self.energy_usd_per_hour(self.active_kw), self.energy_usd_per_hour(self.idle_kw)
        return self.fixed_usd_per_hour() + active * u + idle * (1 - u)

    def usd_per_useful_hour(self, utilisation: float) -> float:
        return self.usd_per_wall_hour(utilisation) / _utilisation(utilisation)

    def break_even_utilisation(self, rent_usd_per_hour: float) -> float | None:
        """The utilisation above which owning is cheaper per useful hour; None if never in (0, 1]."""
        fixed = self.fixed_usd_per_hour()
        active, idle = self.energy_usd_per_hour(self.active_kw), self.energy_usd_per_hour(self.idle_kw)
        denominator = rent_usd_per_hour + idle - active
        if denominator <= 0:
            return None
        u = (fixed + idle) / denominator
        return u if 0 < u <= 1 else None


def _utilisation(u: float) -> float:
    if not 0 < u <= 1:
        raise ValueError(f"utilisation must be in (0, 1], got {u}")
    return u


def usd_per_mtok(usd_per_gpu_hour: float, tokens_per_s: float) -> float:
    """$ per million tokens at a $ per (useful) GPU-hour and a rate in tokens/s per GPU."""
    if tokens_per_s <= 0:
        raise ValueError(f"tokens/s must be positive, got {tokens_per_s}")
    return usd_per_gpu_hour / (tokens_per_s * 3600 / 1e6)
