"""Pricing records and given rates: owned at the catalog's site against each rental offer, per GPU model.

The formulas are bench/cost/model.py; what is priced (a record's token rates and power) is
bench/cost/subjects.py. Here the catalog's figures meet them: the owned GPU at the site, the
offers, break-even and sensitivity per GPU model, the $/Mtok rows, and a training-run projection.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from bench.catalog import gpus
from bench.catalog.prices import SENSITIVITY_KEYS, Catalog, Offer
from bench.cost.model import (
    BreakEven,
    Owned,
    break_even,
    cost_ratio,
    rented_usd_per_useful_hour,
    training_flops,
    training_gpu_hours,
    usd_per_mtok,
)
from bench.cost.subjects import Power, Subject, not_priced

SITE_OVERRIDES = ("depreciation_years", "pue", "usd_per_kwh", "maintenance_share", "capital")


def owned_for(cat: Catalog, gpu_id: str, power: Power, **overrides: float) -> Owned | None:
    """The owned GPU at the catalog's site, with any site figure (or a capital multiplier) replaced."""
    server = cat.server_for(gpu_id)
    if server is None:
        return None
    unknown = set(overrides) - set(SITE_OVERRIDES)
    if unknown:
        raise ValueError(f"unknown override(s) {sorted(unknown)}")

    def site(name: str) -> float:
        return overrides.get(name, cat.value(name))

    return Owned(
        capital_usd=server.capital_per_gpu_usd * overrides.get("capital", 1.0),
        years=site("depreciation_years"),
        rate=cat.value("cost_of_capital"),
        maintenance_share=site("maintenance_share"),
        colo_usd_per_kw_month=cat.value("colo_usd_per_kw_month"),
        provisioned_kw=server.provisioned_kw_per_gpu,
        pue=site("pue"),
        usd_per_kwh=site("usd_per_kwh"),
        active_kw=power.active_w / 1000,
        idle_kw=power.idle_w / 1000,
    )


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


def sensitivity(cat: Catalog, gpu_id: str, power: Power, offer: Offer) -> list[Sensitivity]:
    """One at a time over the catalog's ranges, the rest held at the site figures."""
    u0 = cat.value("utilisation")
    rows = []
    for name in SENSITIVITY_KEYS:
        low, high = getattr(cat.sensitivity, name)
        ends = []
        for value in (low, high):
            u, factor, overrides = u0, 1.0, {}
            if name == "utilisation":
                u = value
            elif name == "rental_price":
                factor = value
            else:
                overrides = {name: value}
            owned = owned_for(cat, gpu_id, power, **overrides)
            assert owned is not None
            ends.append((cost_ratio(owned, offer, u, factor), owned.usd_per_useful_hour(u)))
        rows.append(Sensitivity(name, low, high, ends[0][0], ends[1][0], ends[0][1], ends[1][1]))
    return rows


@dataclass(frozen=True)
class Projection:
    """A whole training run from a measured MFU: FLOPs = 6 N D."""

    params: float
    tokens: float
    n_gpus: int
    mfu: float
    mfu_from: str
    dtype: str
    peak_flops: float
    flops: float
    gpu_hours: float
    days: float
    power_w: float  # the active power the energy is counted at
    power_from: str
    energy_mwh: float  # GPU-hours x power x PUE
    usd: dict[str, float]  # scenario id ("owned" or an offer id) -> $ for the run
    usd_per_useful_hour: dict[str, float]  # the rate each is priced at
    utilisation: float  # owned and committed rates are amortised at it: the fleet stays this busy


def project_training(
    cat: Catalog,
    gpu_id: str,
    power: Power,
    params: float,
    tokens: float,
    n_gpus: int,
    mfu: float,
    mfu_from: str,
    dtype: str = "bf16",
    offers: list[Offer] | None = None,
) -> Projection:
    """A training run of `params` on `tokens` over `n_gpus` at `mfu`: its GPU-hours, days, energy and $."""
    if params <= 0 or tokens <= 0 or n_gpus <= 0:
        raise ValueError("training projection: parameters, tokens and GPUs must be positive")
    if not 0 < mfu <= 1:
        raise ValueError(f"training projection: MFU must be in (0, 1], got {mfu}")
    peak = gpus.peak_flops(cat.gpus[gpu_id], dtype)
    if peak is None:
        raise ValueError(f"training projection: the catalog has no {dtype} peak for {gpu_id}")
    flops = training_flops(params, tokens)
    gpu_hours = training_gpu_hours(flops, mfu, peak)
    u = cat.value("utilisation")
    rates: dict[str, float] = {}
    owned = owned_for(cat, gpu_id, power)
    if owned is not None:
        rates["owned"] = owned.usd_per_useful_hour(u)
    for offer in offers if offers is not None else cat.offers_for(gpu_id):
        rates[offer.id] = rented_usd_per_useful_hour(offer.usd_per_gpu_hour, offer.committed, u)
    return Projection(
        params=params,
        tokens=tokens,
        n_gpus=n_gpus,
        mfu=mfu,
        mfu_from=mfu_from,
        dtype=dtype,
        peak_flops=peak,
        flops=flops,
        gpu_hours=gpu_hours,
        days=gpu_hours / n_gpus / 24,
        power_w=power.active_w,
        power_from=power.active_from,
        energy_mwh=gpu_hours * power.active_w / 1000 * cat.value("pue") / 1000,
        usd={k: gpu_hours * v for k, v in rates.items()},
        usd_per_useful_hour=rates,
        utilisation=u,
    )


@dataclass
class GpuCost:
    """Everything priced for one GPU model: its owned cost, offers, and the focus subject's analyses."""

    gpu: str
    offers: list[Offer]
    focus: Subject  # the subject whose power sets break-even, sensitivity and plots
    owned: Owned | None
    owned_reason: str | None
    break_even: dict[str, BreakEven] = field(default_factory=dict)  # offer id -> against the focus power
    reference: Offer | None = None  # the offer the sensitivity compares with: cheapest per useful hour
    sensitivity: list[Sensitivity] = field(default_factory=list)
    projection: Projection | None = None


def focus_subject(subjects: list[Subject]) -> Subject:
    """The subject with the highest active power: the costliest energy, so owning is not flattered."""
    return max(subjects, key=lambda s: (not s.power.active_from.startswith("estimate"), s.power.active_w))


def analyse_gpu(cat: Catalog, gpu_id: str, subjects: list[Subject], extra_offers: list[Offer]) -> GpuCost:
    """One GPU model: its offers, and owned, break-even and sensitivity at the focus subject's power."""
    offers = [*extra_offers, *cat.offers_for(gpu_id)]
    focus = focus_subject(subjects)
    owned = owned_for(cat, gpu_id, focus.power)
    reason = None if owned else f"no owned server price for {gpu_id} in the catalog; add a [[server]] with --catalog"
    result = GpuCost(gpu_id, offers, focus, owned, reason)
    u = cat.value("utilisation")
    if owned is not None and offers:
        for offer in offers:
            result.break_even[offer.id] = break_even(owned, offer.usd_per_gpu_hour, offer.committed, u)
        result.reference = min(offers, key=lambda o: rented_usd_per_useful_hour(o.usd_per_gpu_hour, o.committed, u))
        result.sensitivity = sensitivity(cat, gpu_id, focus.power, result.reference)
    return result


def _scenarios(cat: Catalog, s: Subject, gc: GpuCost, u: float) -> list[tuple[str, float, dict[str, Any]]]:
    """Owned (at this subject's own power) and each offer: (scenario, $ per useful hour, price fields)."""
    owned = owned_for(cat, s.gpu, s.power)
    out: list[tuple[str, float, dict[str, Any]]] = []
    server = cat.server_for(s.gpu)
    if owned is not None and server is not None:
        fields = {
            "provider": "owned",
            "term": f"{cat.value('depreciation_years'):g}-year depreciation",
            "usd_per_gpu_hour": owned.usd_per_wall_hour(u),
            "price_date": server.date,
            "price_source": server.source,
            "price_weak": server.weak,
        }
        out.append(("owned", owned.usd_per_useful_hour(u), fields))
    for offer in gc.offers:
        be = break_even(owned, offer.usd_per_gpu_hour, offer.committed, u) if owned else None
        fields = {
            "provider": offer.provider,
            "term": offer.term,
            "usd_per_gpu_hour": offer.usd_per_gpu_hour,
            "break_even": be.verdict if be else None,
            "break_even_utilisation": be.utilisation if be else None,
            "payback_months": be.payback_months if be else None,
            "price_date": offer.date,
            "price_source": offer.source,
            "price_weak": offer.weak,
        }
        out.append((offer.id, rented_usd_per_useful_hour(offer.usd_per_gpu_hour, offer.committed, u), fields))
    return out


def subject_rows(cat: Catalog, s: Subject, gc: GpuCost) -> list[dict[str, Any]]:
    """One subject's rows of the $/Mtok table: one per token kind and scenario (owned, each offer)."""
    u = cat.value("utilisation")
    scenarios = _scenarios(cat, s, gc, u)
    owned_hour = next((hour for name, hour, _ in scenarios if name == "owned"), None)
    rows: list[dict[str, Any]] = []
    for kind, tps in s.bases:
        for scenario, hour, fields in scenarios:
            rows.append(
                {
                    "run_id": s.run_id,
                    "seq": s.seq,
                    "workload": s.workload,
                    "label": s.label,
                    "gpu": s.gpu,
                    "batch": s.batch,
                    "tokens": kind,
                    "tokens_per_s": tps,
                    "per_user_tokens_per_s": s.per_user_tokens_per_s,
                    "power_w": s.power.active_w,
                    "power_from": s.power.active_from,
                    "idle_power_w": s.power.idle_w,
                    "idle_power_from": s.power.idle_from,
                    "utilisation": u,
                    "scenario": scenario,
                    **fields,
                    "usd_per_useful_gpu_hour": hour,
                    "usd_per_mtok": usd_per_mtok(hour, tps),
                    "owned_usd_per_mtok": usd_per_mtok(owned_hour, tps) if owned_hour is not None else None,
                }
            )
    return rows


def price_rows(cat: Catalog, subjects: list[Subject], costs: dict[str, GpuCost]) -> list[dict[str, Any]]:
    """One row per subject, token kind and scenario (owned, each offer): the $/Mtok table, long form."""
    return [row for s in subjects for row in subject_rows(cat, s, costs[s.gpu])]


@dataclass
class CostReport:
    """The priced subjects, the records left out and why, each GPU model's analysis and the $/Mtok rows."""

    catalog: Catalog
    subjects: list[Subject]
    skipped: list[dict[str, Any]]
    gpus: dict[str, GpuCost]
    rows: list[dict[str, Any]]

    def rows_of(self, subject: Subject) -> list[dict[str, Any]]:
        """The rows of one priced subject, as in `rows`.

        Computed again rather than picked from `rows` by run id and seq: the ranks of one run
        share those, so only the subject itself tells its rows apart."""
        return subject_rows(self.catalog, subject, self.gpus[subject.gpu])


def analyse(
    cat: Catalog,
    subjects: list[Subject],
    skipped: list[dict[str, Any]] | None = None,
    extra_offers: list[Offer] | None = None,
) -> CostReport:
    """Price every subject on a GPU the catalog (or `extra_offers`) has a price for; the others join `skipped`."""
    extra = extra_offers or []
    skipped = list(skipped or [])
    priceable = []
    for s in subjects:
        if cat.server_for(s.gpu) is None and not cat.offers_for(s.gpu) and not any(o.gpu == s.gpu for o in extra):
            reason = f"no owned server price and no rental offer for {s.gpu} in the catalog; add them with --catalog"
            skipped.append(not_priced(s.run_id, s.seq, s.workload, reason))
        else:
            priceable.append(s)
    subjects = priceable
    by_gpu: dict[str, list[Subject]] = {}
    for s in subjects:
        by_gpu.setdefault(s.gpu, []).append(s)
    costs = {g: analyse_gpu(cat, g, subs, [o for o in extra if o.gpu == g]) for g, subs in by_gpu.items()}
    return CostReport(cat, subjects, skipped, costs, price_rows(cat, subjects, costs))


def projection_for(
    cat: Catalog,
    gc: GpuCost,
    subjects: list[Subject],
    params: float,
    tokens: float,
    n_gpus: int,
    mfu: float | None = None,
) -> Projection:
    """The training projection for one GPU: from the given MFU, else its best measured training record."""
    if mfu is not None:
        return project_training(
            cat, gc.gpu, gc.focus.power, params, tokens, n_gpus, mfu, "given (--mfu)", offers=gc.offers
        )
    trained = [s for s in subjects if s.gpu == gc.gpu and s.workload == "train" and s.mfu]
    if not trained:
        raise ValueError(f"training projection for {gc.gpu}: no training record with an MFU; pass --mfu")

    def dtype_of(s: Subject) -> str:
        return s.compute_dtype if s.compute_dtype in gpus.PEAK_DTYPES else "bf16"

    def achieved(s: Subject) -> float:  # FLOP/s, so a bf16 record at 40% does not beat fp8 at 30%
        return (s.mfu or 0.0) * (gpus.peak_flops(cat.gpus[gc.gpu], dtype_of(s)) or 0.0)

    best = max(trained, key=achieved)
    dtype = dtype_of(best)
    where = f", run {best.run_id} seq {best.seq}" if best.run_id else ""
    return project_training(
        cat,
        gc.gpu,
        best.power,
        params,
        tokens,
        n_gpus,
        best.mfu or 0.0,
        f"measured: {best.label}{where}",
        dtype=dtype,
        offers=gc.offers,
    )


def given_offer(gpu_id: str, usd_per_gpu_hour: float, term: str = "on-demand") -> Offer:
    """A price the user gave on the command line, dated today."""
    return Offer(
        id="given",
        gpu=gpu_id,
        provider="(given)",
        product="--usd-per-gpu-hour",
        term=term,
        usd_per_gpu_hour=usd_per_gpu_hour,
        date=dt.date.today().isoformat(),
        source="command line",
    )
