"""Over the hardware's life: a rent that falls or rises, valued at the cost of capital, year by year.

Pure arithmetic, annual periods, end-of-year discounting, 8,760 hours a year. A life of n years
runs over N = ceil(n) years, the last one weighted by its fraction (1 for a whole number of years).

- Rent in year k = R (1 - d)^(k-1), d the yearly decline (negative: a rise).
- Present value of the rent = sum over k of w_k x hours x R (1 - d)^(k-1) / (1+r)^k.
- Level (equivalent annual) rent = R x L(d), L(d) = sum w_k (1-d)^(k-1) v^k / sum w_k v^k, v = 1/(1+r):
  the flat price whose present value is the same (L = 1 when d = 0).
- Break-even decline d*: L(d*) = T, the flat rent at which owning and renting cost the same divided
  by R; L rises with 1 - d, so there is one root, found with numpy's polynomial roots.
- Year by year: owned pays the capital P in year 0, its operating cost each year (maintenance,
  colocation, energy, less resale of idle hours) and gets the residual S back at the end; rented pays
  each year's rent. Owning overtakes renting in the first year its cumulative cost (cash, or
  present value) falls to or below renting's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

HOURS_PER_YEAR = 8760.0


def year_weights(years: float) -> np.ndarray:
    """w_k for k = 1..ceil(n): 1 for each whole year, the fraction for a last part-year."""
    if not 0 < years <= 100:
        raise ValueError(f"life must be in (0, 100] years, got {years}")
    n = math.ceil(years - 1e-9)
    weights = np.ones(n)
    weights[-1] = years - (n - 1)
    return weights


def discount_factors(rate: float, years: float) -> np.ndarray:
    """v^k = 1 / (1+r)^k for k = 1..ceil(n): end-of-year discounting."""
    k = np.arange(1, len(year_weights(years)) + 1)
    return (1.0 + rate) ** -k.astype(float)


def rent_path(decline: float, years: float) -> np.ndarray:
    """(1 - d)^(k-1) for k = 1..ceil(n): each year's rent as a multiple of the first year's."""
    if not decline < 1:
        raise ValueError(f"a rent decline must be below 100% a year, got {decline:.0%}")
    return (1.0 - decline) ** np.arange(len(year_weights(years)), dtype=float)


def rent_present_value(usd_per_year: float, decline: float, rate: float, years: float) -> float:
    """PV = sum w_k x (first year's rent) x (1 - d)^(k-1) / (1+r)^k."""
    w, v = year_weights(years), discount_factors(rate, years)
    return float(usd_per_year * np.sum(w * rent_path(decline, years) * v))


def level_factor(decline: float, rate: float, years: float) -> float:
    """L(d) = sum w_k (1-d)^(k-1) v^k / sum w_k v^k: the level rent as a multiple of the first year's."""
    w, v = year_weights(years), discount_factors(rate, years)
    return float(np.sum(w * rent_path(decline, years) * v) / np.sum(w * v))


def break_even_decline(target: float, rate: float, years: float) -> float | None:
    """The d with L(d) = target (a fall if positive, a rise if negative); None if no d < 1 reaches it.

    `target` is the level rent at which owning costs the same, over the first year's rent."""
    w, v = year_weights(years), discount_factors(rate, years)
    coefficients = w * v / np.sum(w * v)  # L as a polynomial in x = 1 - d: sum c_k x^(k-1)
    if len(coefficients) == 1 or target <= coefficients[0]:
        return None  # a one-year life has no later rents; or even a 100% fall after year 1 keeps the rent above
    poly = np.polynomial.Polynomial([coefficients[0] - target, *coefficients[1:]])
    roots = [float(r.real) for r in np.atleast_1d(poly.roots()).astype(complex) if abs(r.imag) < 1e-9 and r.real > 0]
    return 1.0 - min(roots) if roots else None


@dataclass(frozen=True)
class YearRow:
    """One year of owning against renting, per GPU: cash, cumulative and present value."""

    year: int
    owned_usd: float
    rented_usd: float
    owned_cumulative_usd: float
    rented_cumulative_usd: float
    owned_pv_cumulative_usd: float
    rented_pv_cumulative_usd: float


@dataclass(frozen=True)
class Schedule:
    """The life year by year, and the year owning overtakes renting (None if it never does)."""

    rows: list[YearRow]
    overtakes_year: int | None  # in present value at the cost of capital
    overtakes_year_cash: int | None  # undiscounted

    @property
    def owned_pv_usd(self) -> float:
        return self.rows[-1].owned_pv_cumulative_usd

    @property
    def rented_pv_usd(self) -> float:
        return self.rows[-1].rented_pv_cumulative_usd


def schedule(
    capital_usd: float,
    residual_usd: float,
    operating_usd_per_year: float,
    rent_usd_per_year: float,
    decline: float,
    rate: float,
    years: float,
) -> Schedule:
    """Year 0 the capital; years 1..N operating cost (the last less the residual) against the rent path."""
    w, v = year_weights(years), discount_factors(rate, years)
    owned = np.concatenate([[capital_usd], w * operating_usd_per_year])
    owned[-1] -= residual_usd
    rented = np.concatenate([[0.0], w * rent_usd_per_year * rent_path(decline, years)])
    discount = np.concatenate([[1.0], v])
    cash = (np.cumsum(owned), np.cumsum(rented))
    pv = (np.cumsum(owned * discount), np.cumsum(rented * discount))
    rows = [
        YearRow(k, float(owned[k]), float(rented[k]), float(cash[0][k]), float(cash[1][k]), float(pv[0][k]),
                float(pv[1][k]))
        for k in range(len(owned))
    ]  # fmt: skip
    return Schedule(rows, _first_at_or_below(*pv), _first_at_or_below(*cash))


def _first_at_or_below(owned: np.ndarray, rented: np.ndarray) -> int | None:
    """The first year (from 1) whose cumulative owned cost is at or below the rented, if it stays so to the end."""
    below = owned[1:] <= rented[1:] * (1 + 1e-12)
    if not below[-1]:
        return None
    last_above = np.flatnonzero(~below)
    return int(last_above[-1]) + 2 if len(last_above) else 1
