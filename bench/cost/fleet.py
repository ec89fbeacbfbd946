"""Fleet scale: facility megawatts to GPUs, dollars and tokens a year; a rental contract to the GPUs it buys.

Pure arithmetic (8,760 hours a year):

- IT power = facility power / PUE; GPUs = floor(IT kW / provisioned kW per GPU).
- Capital = GPUs x capital per GPU; owned $ a year = GPUs x owned net $ per wall hour x 8760.
- Rented $ a year for the same useful hours = GPUs x u x 8760 x rented $ per useful hour.
- Tokens a year = GPUs x tokens/s per GPU x u x 3600 x 8760.
- Tokens/s per provisioned MW = tokens/s per GPU / provisioned kW per GPU x 1000 (InferenceX's figure).
- A contract of C dollars over Y years at R $ per GPU-hour buys C / R GPU-hours, that is
  C / R / (Y x 8760) GPUs running every hour of the term.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.cost.model import HOURS_PER_YEAR, usd_per_mtok


def gpus_for_facility(facility_mw: float, pue: float, kw_per_gpu: float) -> int:
    """GPUs = floor(facility MW x 1000 / PUE / provisioned kW per GPU)."""
    if facility_mw <= 0 or pue < 1 or kw_per_gpu <= 0:
        raise ValueError("a fleet needs positive megawatts, a PUE of at least 1 and a provisioned kW per GPU")
    return math.floor(facility_mw * 1000 / pue / kw_per_gpu + 1e-9)


@dataclass(frozen=True)
class Fleet:
    """A facility's worth of one GPU: how many, what they cost and what they make, owned and rented."""

    facility_mw: float
    pue: float
    it_kw: float  # facility kW / PUE
    kw_per_gpu: float  # provisioned, all-in (servers.toml)
    gpus: int
    capital_usd: float
    owned_usd_per_year: float
    rented_usd_per_year: float | None  # for the same useful hours under the reference offer; None without one
    utilisation: float
    tokens_per_s_per_gpu: float
    tokens_per_year: float
    usd_per_mtok_owned: float
    usd_per_mtok_rented: float | None
    tokens_per_s_per_provisioned_mw: float


def fleet(
    facility_mw: float,
    pue: float,
    kw_per_gpu: float,
    capital_per_gpu_usd: float,
    owned_usd_per_wall_hour: float,
    rented_usd_per_useful_hour: float | None,
    tokens_per_s_per_gpu: float,
    utilisation: float,
) -> Fleet:
    """The fleet a facility holds, and its yearly cost and tokens, owned and (if priced) rented."""
    n = gpus_for_facility(facility_mw, pue, kw_per_gpu)
    useful_hours = n * utilisation * HOURS_PER_YEAR
    owned_useful = owned_usd_per_wall_hour / utilisation
    return Fleet(
        facility_mw=facility_mw,
        pue=pue,
        it_kw=facility_mw * 1000 / pue,
        kw_per_gpu=kw_per_gpu,
        gpus=n,
        capital_usd=n * capital_per_gpu_usd,
        owned_usd_per_year=n * owned_usd_per_wall_hour * HOURS_PER_YEAR,
        rented_usd_per_year=None if rented_usd_per_useful_hour is None else useful_hours * rented_usd_per_useful_hour,
        utilisation=utilisation,
        tokens_per_s_per_gpu=tokens_per_s_per_gpu,
        tokens_per_year=useful_hours * 3600 * tokens_per_s_per_gpu,
        usd_per_mtok_owned=usd_per_mtok(owned_useful, tokens_per_s_per_gpu),
        usd_per_mtok_rented=None
        if rented_usd_per_useful_hour is None
        else usd_per_mtok(rented_usd_per_useful_hour, tokens_per_s_per_gpu),
        tokens_per_s_per_provisioned_mw=tokens_per_s_per_gpu / kw_per_gpu * 1000,
    )


@dataclass(frozen=True)
class Contract:
    """What a rental contract buys: GPU-hours, and GPUs running every hour of its term."""

    usd: float
    years: float
    usd_per_gpu_hour: float
    gpu_hours: float
    gpus: float


def contract(usd: float, years: float, usd_per_gpu_hour: float) -> Contract:
    """GPU-hours = C / R; GPUs = GPU-hours / (Y x 8760)."""
    if usd <= 0 or years <= 0 or usd_per_gpu_hour <= 0:
        raise ValueError("a contract needs a positive value, term and rate")
    gpu_hours = usd / usd_per_gpu_hour
    return Contract(usd, years, usd_per_gpu_hour, gpu_hours, gpu_hours / (years * HOURS_PER_YEAR))
