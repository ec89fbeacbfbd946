"""Cost per token: owning GPUs against renting them (DESIGN: cost model). Pure arithmetic on records.

The formulas:

- Capital recovery factor CRF(r, n) = r(1+r)^n / ((1+r)^n - 1); 1/n at r = 0 (straight line).
- Owned $ per wall-clock GPU-hour = capital x (CRF + maintenance share) / 8760
  + colocation $/kW-month x provisioned kW x 12 / 8760
  + energy: (active kW x u + idle kW x (1 - u)) x PUE x $/kWh.
- $ per useful GPU-hour = $ per wall hour / u (an idle hour is paid for too).
- $/Mtok = $ per useful GPU-hour / (tokens/s per GPU x 3600 / 1e6).
- Rented $ per useful GPU-hour: the price on demand (paid per hour used); price / u on a 1- or
  3-year term (every hour of the term is paid, so it idles like an owned GPU).
- Break-even against an on-demand price R: owning is cheaper above
  u* = (F + E_idle) / (R + E_idle - E_active), with F the fixed $ per wall hour and E the energy
  $ per hour at the active and idle power. Against a committed price both sides pay every hour:
  owning is cheaper while F + E_idle + (E_active - E_idle) u < R.
- Months to break even (discounted payback at the cost of capital r): with S the monthly saving
  (rent paid - maintenance, colocation and energy) and r_m = (1 + r)^(1/12) - 1, the n at which
  S's present value repays the capital C: n = -ln(1 - r_m C / S) / ln(1 + r_m); C / S when r = 0.
- Training run: FLOPs = 6 N D; GPU-hours = FLOPs / (MFU x dense peak) / 3600; days = GPU-hours / GPUs / 24.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bench.catalog import gpus
from bench.catalog.prices import SENSITIVITY_KEYS, Catalog, Offer

HOURS_PER_YEAR = 8760.0
HOURS_PER_MONTH = HOURS_PER_YEAR / 12


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

    def capital_usd_per_hour(self) -> float:
        """Capital recovery: capital x CRF, spread over every hour of the year."""
        return self.capital_usd * crf(self.rate, self.years) / HOURS_PER_YEAR

    def maintenance_usd_per_hour(self) -> float:
        return self.capital_usd * self.maintenance_share / HOURS_PER_YEAR

    def colo_usd_per_hour(self) -> float:
        return self.colo_usd_per_kw_month * self.provisioned_kw * 12 / HOURS_PER_YEAR

    def fixed_usd_per_hour(self) -> float:
        """What an owned GPU costs per wall-clock hour whether it works or not (energy aside)."""
        return self.capital_usd_per_hour() + self.maintenance_usd_per_hour() + self.colo_usd_per_hour()

    def energy_usd_per_hour(self, kw: float) -> float:
        return kw * self.pue * self.usd_per_kwh

    def usd_per_wall_hour(self, utilisation: float) -> float:
        return self.fixed_usd_per_hour() + self.energy_usd_per_wall_hour(utilisation)

    def energy_usd_per_wall_hour(self, utilisation: float) -> float:
        u = _utilisation(utilisation)
        return self.energy_usd_per_hour(self.active_kw) * u + self.energy_usd_per_hour(self.idle_kw) * (1 - u)

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


def rented_usd_per_useful_hour(usd_per_gpu_hour: float, committed: bool, utilisation: float) -> float:
    """On demand only used hours are paid; on a committed term every hour is, used or not."""
    return usd_per_gpu_hour / _utilisation(utilisation) if committed else usd_per_gpu_hour


@dataclass(frozen=True)
class BreakEven:
    """Owned against one rental price: where owning gets cheaper, and how soon it pays back."""

    verdict: str  # e.g. "owning cheaper above 41%", "renting cheaper at any utilisation"
    utilisation: float | None  # the crossing point in (0, 1]; None when there is none
    owning_cheaper_at_site: bool  # at the site's utilisation
    payback_months: float | None  # None when owning never saves money each month


def break_even(owned: Owned, price: float, committed: bool, utilisation: float) -> BreakEven:
    fixed = owned.fixed_usd_per_hour()
    e_active, e_idle = owned.energy_usd_per_hour(owned.active_kw), owned.energy_usd_per_hour(owned.idle_kw)
    cheaper_now = owned.usd_per_useful_hour(utilisation) < rented_usd_per_useful_hour(price, committed, utilisation)
    crossing: float | None = None
    if not committed:
        crossing = owned.break_even_utilisation(price)
        verdict = "renting cheaper at any utilisation" if crossing is None else f"owning cheaper above {crossing:.0%}"
    else:
        at_idle, at_full = fixed + e_idle, fixed + e_active  # owned $ per wall hour at u -> 0 and u = 1
        if max(at_idle, at_full) < price:
            verdict = "owning cheaper at any utilisation"
        elif min(at_idle, at_full) >= price:
            verdict = "renting cheaper at any utilisation"
        else:  # energy tips it: owning gets dearer as u grows (more active hours) when e_active > e_idle
            crossing = (price - at_idle) / (e_active - e_idle)
            side = "below" if e_active > e_idle else "above"
            verdict = f"owning cheaper {side} {crossing:.0%}"
    rent_per_month = price * HOURS_PER_MONTH * (1.0 if committed else utilisation)
    operating = owned.usd_per_wall_hour(utilisation) - owned.capital_usd_per_hour()
    saving_per_month = rent_per_month - operating * HOURS_PER_MONTH
    return BreakEven(verdict, crossing, cheaper_now, payback_months(owned.capital_usd, saving_per_month, owned.rate))


def payback_months(capital: float, saving_per_month: float, rate: float) -> float | None:
    """Months of savings whose present value at the cost of capital repays the capital; None if never."""
    if saving_per_month <= 0:
        return None
    if rate == 0:
        return capital / saving_per_month
    r_m = (1.0 + rate) ** (1 / 12) - 1.0
    if r_m * capital >= saving_per_month:  # the interest alone eats the saving
        return None
    return -math.log(1.0 - r_m * capital / saving_per_month) / math.log1p(r_m)


# --- what is priced: records and given rates ----------------------------------------------------


@dataclass(frozen=True)
class Power:
    """Active and idle power of one GPU and where each figure comes from."""

    active_w: float
    idle_w: float
    active_from: str  # "measured", "given" or "estimate: ..."
    idle_from: str

    @property
    def estimated(self) -> bool:
        return self.active_from.startswith("estimate") or self.idle_from.startswith("estimate")


def power_for(spec: gpus.GpuSpec, active_w: float | None, idle_w: float | None, how: str = "measured") -> Power:
    """Measured (or given) power where there is some; the catalog TDP only as a labelled estimate."""
    if active_w is not None and active_w > 0:
        active, active_from = float(active_w), how
    else:
        active, active_from = spec.tdp_w, f"estimate: TDP {spec.tdp_w:g} W (no power measured)"
    if idle_w is not None and idle_w > 0:
        idle, idle_from = float(idle_w), how
    else:  # no source gives a GPU's idle draw in general; count idle hours at the active power
        idle, idle_from = active, "estimate: the active power (no idle baseline measured; an upper bound)"
    return Power(active, idle, active_from, idle_from)


@dataclass(frozen=True)
class Subject:
    """One thing to price: a measured record, or a rate the user gave."""

    gpu: str
    label: str  # workload and configuration
    bases: tuple[tuple[str, float], ...]  # (token kind, tokens/s per GPU), e.g. ("output", 1557.0)
    power: Power
    run_id: str | None = None
    seq: int | None = None
    workload: str | None = None
    batch: int | None = None
    per_user_tokens_per_s: float | None = None  # decode: the interactivity the cost goes with
    mfu: float | None = None
    compute_dtype: str | None = None


def token_bases(record: dict[str, Any]) -> list[tuple[str, float]]:
    """Tokens/s per GPU by kind: decode output, input and total; prefill input; training trained.

    Only the LLM workloads are priced: a kernel's "tokens" (attention's query positions) are not
    tokens anyone pays for."""
    tps = _num(record.get("tokens_per_s"))
    workload = record.get("workload")
    if workload == "decode":
        out = _num(record.get("output_tokens_per_s")) or tps
        prompt, new = _num(record.get("param_prompt_len")), _num(record.get("param_new_tokens"))
        if out is None:
            return []
        if not prompt or not new:
            return [("output", out)]
        inp = out * prompt / new  # the same calls read B x N prompt tokens for every B x M they write
        return [("output", out), ("input", inp), ("total", out + inp)]
    kind = {"train": "trained", "prefill": "input"}.get(str(workload))
    return [(kind, tps)] if kind and tps is not None else []


def _num(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) and x > 0 else None


def _record_spec(record: dict[str, Any], cat: Catalog) -> tuple[gpus.GpuSpec | None, str | None]:
    # Matched again with the merged catalog, so a user's [[gpu]] entry can claim a device the run did not know.
    return gpus.catalog_spec(str(record.get("device_name") or ""), cat.gpu_list())


def record_gpu(record: dict[str, Any], cat: Catalog) -> str | None:
    """The catalog GPU id a record ran on; None for a CPU, a MIG slice or an unknown device."""
    spec, _ = _record_spec(record, cat)
    return spec.id if spec else None


def subjects_from_records(records: Iterable[dict[str, Any]], cat: Catalog) -> tuple[list[Subject], list[dict]]:
    """Every ok record with a token rate on a catalog GPU, and why each other record is not priced."""
    subjects: list[Subject] = []
    skipped: list[dict[str, Any]] = []
    for r in records:
        where = {"run_id": r.get("run_id"), "seq": r.get("seq"), "workload": r.get("workload")}
        if r.get("status") != "ok":
            skipped.append({**where, "reason": f"status {r.get('status')}, not ok"})
            continue
        bases = token_bases(r)
        if not bases:
            llm = r.get("workload") in ("train", "prefill", "decode")
            why = "no token rate in the record" if llm else "a kernel benchmark (no tokens to price)"
            skipped.append({**where, "reason": why})
            continue
        spec, why = _record_spec(r, cat)
        if spec is None:
            skipped.append({**where, "reason": f"not a catalog GPU: {why}"})
            continue
        subjects.append(
            Subject(
                gpu=spec.id,
                label=str(r.get("label") or r.get("workload")),
                bases=tuple(bases),
                power=power_for(spec, _num(r.get("power_mean_w")), _num(r.get("idle_power_w"))),
                run_id=r.get("run_id"),
                seq=r.get("seq"),
                workload=r.get("workload"),
                batch=r.get("param_batch"),
                per_user_tokens_per_s=_num(r.get("per_user_tokens_per_s")),
                mfu=_num(r.get("mfu")),
                compute_dtype=r.get("compute_dtype"),
            )
        )
    return subjects, skipped


# --- the analysis -------------------------------------------------------------------------------

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
    parameter: str
    low: float
    high: float
    ratio_low: float  # owned / rented cost per useful hour (= per token) at `low`; below 1 owning is cheaper
    ratio_high: float
    owned_usd_per_useful_hour_low: float
    owned_usd_per_useful_hour_high: float


def cost_ratio(owned: Owned, offer: Offer, utilisation: float, price_factor: float = 1.0) -> float:
    """Owned / rented cost per useful hour; below 1 owning is cheaper.

    The same ratio holds for $/Mtok at any token rate, since both divide by the same tokens."""
    rent = rented_usd_per_useful_hour(offer.usd_per_gpu_hour * price_factor, offer.committed, utilisation)
    return owned.usd_per_useful_hour(utilisation) / rent


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
    if params <= 0 or tokens <= 0 or n_gpus <= 0:
        raise ValueError("training projection: parameters, tokens and GPUs must be positive")
    if not 0 < mfu <= 1:
        raise ValueError(f"training projection: MFU must be in (0, 1], got {mfu}")
    peak = gpus.peak_flops(cat.gpus[gpu_id], dtype)
    if peak is None:
        raise ValueError(f"training projection: the catalog has no {dtype} peak for {gpu_id}")
    flops = 6.0 * params * tokens
    gpu_hours = flops / (mfu * peak) / 3600
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


def price_rows(cat: Catalog, subjects: list[Subject], costs: dict[str, GpuCost]) -> list[dict[str, Any]]:
    """One row per subject, token kind and scenario (owned, each offer): the $/Mtok table, long form."""
    u = cat.value("utilisation")
    rows: list[dict[str, Any]] = []
    for s in subjects:
        scenarios = _scenarios(cat, s, costs[s.gpu], u)
        owned_hour = next((hour for name, hour, _ in scenarios if name == "owned"), None)
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


@dataclass
class CostReport:
    catalog: Catalog
    subjects: list[Subject]
    skipped: list[dict[str, Any]]
    gpus: dict[str, GpuCost]
    rows: list[dict[str, Any]]


def analyse(
    cat: Catalog,
    subjects: list[Subject],
    skipped: list[dict[str, Any]] | None = None,
    extra_offers: list[Offer] | None = None,
) -> CostReport:
    extra = extra_offers or []
    skipped = list(skipped or [])
    priceable = []
    for s in subjects:
        if cat.server_for(s.gpu) is None and not cat.offers_for(s.gpu) and not any(o.gpu == s.gpu for o in extra):
            reason = f"no owned server price and no rental offer for {s.gpu} in the catalog; add them with --catalog"
            skipped.append({"run_id": s.run_id, "seq": s.seq, "workload": s.workload, "reason": reason})
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
        return s.compute_dtype if s.compute_dtype in gpus.PEAK_DTYPES else "bf16"  # type: ignore[return-value]

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
        term=term,  # type: ignore[arg-type]
        usd_per_gpu_hour=usd_per_gpu_hour,
        date=dt.date.today().isoformat(),
        source="command line",
    )
