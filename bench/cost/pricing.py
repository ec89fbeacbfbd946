"""Pricing records and given rates: owned at the catalog's site against each rental offer, per GPU model.

The formulas are bench/cost/model.py and bench/cost/life.py; what is priced (a record's token rates
and power) is bench/cost/subjects.py; the catalog's figures meet the formulas in bench/cost/scenario.py.
Here each GPU model gets its offers, break-even (utilisation and rent decline), sensitivity, decision
and year-by-year view, and every subject its $/Mtok rows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from bench.catalog.prices import Catalog, Offer
from bench.cost.fleet import Contract, Fleet
from bench.cost.life import Schedule
from bench.cost.model import BreakEven, Owned, break_even, usd_per_mtok
from bench.cost.projection import Projection, project_training, projection_for
from bench.cost.scenario import break_even_decline, owned_for, rent_level, rented_useful, schedule_for
from bench.cost.sensitivity import Decision, Sensitivity, decide, sensitivity
from bench.cost.subjects import Subject, not_priced

__all__ = ["CostReport", "GpuCost", "analyse", "given_offer", "owned_for", "project_training", "projection_for"]


@dataclass
class GpuCost:
    """Everything priced for one GPU model: its owned cost, offers, and the focus subject's analyses."""

    gpu: str
    offers: list[Offer]
    focus: Subject  # the subject whose power sets break-even, sensitivity and plots
    owned: Owned | None
    owned_reason: str | None
    break_even: dict[str, BreakEven] = field(default_factory=dict)  # offer id -> against the focus power
    reference: Offer | None = None  # the offer compared with: the user's quote, else the cheapest per useful hour
    sensitivity: list[Sensitivity] = field(default_factory=list)
    projection: Projection | None = None
    rent_level: float = 1.0  # the level rent over the life as a multiple of today's (1: rents flat)
    decision: Decision | None = None  # owned against the reference: which way, and what flips it
    schedule: Schedule | None = None  # owned against the reference, year by year, per GPU
    fleet: Fleet | None = None  # --fleet-mw

    @property
    def reference_why(self) -> str:
        """Why the reference offer is the one compared with: "your quote" or "the cheapest offer"."""
        return "your quote" if self.reference is not None and self.reference.id == "given" else "the cheapest offer"


def focus_subject(subjects: list[Subject]) -> Subject:
    """The subject with the highest active power: the costliest energy, so owning is not flattered."""
    return max(subjects, key=lambda s: (not s.power.active_from.startswith("estimate"), s.power.active_w))


def analyse_gpu(cat: Catalog, gpu_id: str, subjects: list[Subject], extra_offers: list[Offer]) -> GpuCost:
    """One GPU model: its offers, and owned, break-even, sensitivity and decision at the focus subject's power."""
    offers = [*extra_offers, *cat.offers_for(gpu_id)]
    focus = focus_subject(subjects)
    owned = owned_for(cat, gpu_id, focus.power)
    reason = None if owned else f"no owned server price for {gpu_id} in the catalog; add a [[server]] with --catalog"
    result = GpuCost(gpu_id, offers, focus, owned, reason, rent_level=rent_level(cat))
    u = cat.value("utilisation")
    if owned is not None and offers:
        for offer in offers:
            be = break_even(owned, offer.usd_per_gpu_hour * result.rent_level, offer.committed, u)
            result.break_even[offer.id] = dataclasses.replace(be, decline=break_even_decline(cat, owned, offer, u))
        quoted = [o for o in extra_offers if o.id == "given"]
        result.reference = quoted[0] if quoted else min(offers, key=lambda o: rented_useful(cat, o, u))
        result.sensitivity = sensitivity(cat, gpu_id, focus.power, result.reference)
        result.decision = decide(cat, gpu_id, owned, result.reference, result.sensitivity, result.reference_why)
        result.schedule = schedule_for(cat, owned, result.reference, u)
    return result


def _scenarios(cat: Catalog, s: Subject, gc: GpuCost, u: float) -> list[tuple[str, float, dict[str, Any]]]:
    """Owned (at this subject's own power) and each offer: (scenario, $ per useful hour, price fields)."""
    owned = owned_for(cat, s.gpu, s.power)
    out: list[tuple[str, float, dict[str, Any]]] = []
    server = cat.server_for(s.gpu)
    if owned is not None and server is not None:
        fields = {
            "provider": "owned",
            "term": f"{owned.years:g}-year depreciation",
            "usd_per_gpu_hour": owned.usd_per_wall_hour(u),
            "price_date": server.date,
            "price_source": server.source,
            "price_weak": server.weak,
        }
        out.append(("owned", owned.usd_per_useful_hour(u), fields))
    for offer in gc.offers:
        be = break_even(owned, offer.usd_per_gpu_hour * gc.rent_level, offer.committed, u) if owned else None
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
        out.append((offer.id, rented_useful(cat, offer, u), fields))
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
    contract: Contract | None = None  # --contract-usd: what a rental contract buys

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
            skipped.append(not_priced(s.run_id, s.seq, s.workload, reason, s.gpu))
        else:
            priceable.append(s)
    subjects = priceable
    by_gpu: dict[str, list[Subject]] = {}
    for s in subjects:
        by_gpu.setdefault(s.gpu, []).append(s)
    costs = {g: analyse_gpu(cat, g, subs, [o for o in extra if o.gpu == g]) for g, subs in by_gpu.items()}
    return CostReport(cat, subjects, skipped, costs, price_rows(cat, subjects, costs))


def given_offer(gpu_id: str, usd_per_gpu_hour: float, term: str = "on-demand") -> Offer:
    """A price the user gave on the command line, dated today."""
    return Offer(
        id="given",
        gpu=gpu_id,
        provider="given price",
        product="--usd-per-gpu-hour",
        term=term,
        usd_per_gpu_hour=usd_per_gpu_hour,
        date=dt.date.today().isoformat(),
        source="command line",
    )
