"""`tokenbench cost --format csv | json`: the $/Mtok rows long form, and everything the tables show as JSON.

Reporting only: reads a `CostReport` (bench/cost/pricing.py), computes nothing new.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pandas as pd

from bench.catalog import market
from bench.cost.headline import headline_for
from bench.cost.pricing import CostReport, GpuCost
from bench.cost.report_life import headline, rent_pv
from bench.cost.scenario import calibration
from bench.results.writer import finite_json
from bench.text import csv_safe


def frame(report: CostReport) -> pd.DataFrame:
    """The $/Mtok rows, long form: one per record, token kind and scenario."""
    return pd.DataFrame(report.rows)


def csv_text(report: CostReport) -> str:
    """The $/Mtok rows as CSV: every string made plain and defused as a spreadsheet formula (bench.text.csv_safe)."""
    return frame(report).map(csv_safe).to_csv(index=False)


def json_text(report: CostReport) -> str:
    """Everything as JSON text: NaN and infinity (not JSON) written as null."""
    return json.dumps(finite_json(as_json(report)), indent=2, default=str, allow_nan=False) + "\n"


def _owned(report: CostReport, gc: GpuCost) -> dict[str, Any] | None:
    cat, o = report.catalog, gc.owned
    if o is None:
        return None
    u = cat.value("utilisation")
    return {
        **dataclasses.asdict(o),
        "server": cat.server_for(gc.gpu).model_dump(),  # type: ignore[union-attr]
        "residual_usd": o.residual_usd(),
        "capital_usd_per_year": o.capital_usd_per_year(),
        "capital_usd_per_hour": o.capital_usd_per_hour(),
        "maintenance_usd_per_hour": o.maintenance_usd_per_hour(),
        "colo_usd_per_hour": o.colo_usd_per_hour(),
        "energy_usd_per_wall_hour": o.energy_usd_per_wall_hour(u),
        "usd_per_wall_hour": o.usd_per_wall_hour(u),
        "resold_share": o.resold_share(u),
        "resale_usd_per_wall_hour": o.resale_usd_per_wall_hour(u),
        "resale_energy_usd_per_wall_hour": o.resale_energy_usd_per_wall_hour(u),
        "net_usd_per_wall_hour": o.net_usd_per_wall_hour(u),
        "usd_per_useful_hour": o.usd_per_useful_hour(u),
        "usd_per_useful_hour_without_resale": o.usd_per_wall_hour(u) / u,
        "calibration": [
            {**dataclasses.asdict(c), "board_difference": c.board_difference, "all_in_difference": c.all_in_difference}
            for c in calibration(cat, gc.gpu)
        ],
    }


def _offer(report: CostReport, gc: GpuCost, offer: Any) -> dict[str, Any]:
    out = offer.model_dump()
    out["level_usd_per_gpu_hour"] = offer.usd_per_gpu_hour * gc.rent_level
    out["rent_pv_usd"] = rent_pv(report.catalog, offer)
    if offer.id in gc.break_even:
        out["break_even"] = dataclasses.asdict(gc.break_even[offer.id])
    return out


def _gpu(report: CostReport, gc: GpuCost) -> dict[str, Any]:
    sched = gc.schedule
    return {
        "focus": dataclasses.asdict(gc.focus),
        "owned": _owned(report, gc),
        "owned_reason": gc.owned_reason,
        "rent_level": gc.rent_level,
        "offers": [_offer(report, gc, offer) for offer in gc.offers],
        "sensitivity_reference": gc.reference.id if gc.reference else None,
        "sensitivity": [dataclasses.asdict(s) for s in gc.sensitivity],
        "decision": {**dataclasses.asdict(gc.decision), "text": gc.decision.text()} if gc.decision else None,
        "years": None
        if sched is None
        else {
            "offer": gc.reference.id if gc.reference else None,
            "rows": [dataclasses.asdict(r) for r in sched.rows],
            "overtakes_year": sched.overtakes_year,
            "overtakes_year_cash": sched.overtakes_year_cash,
            "owned_pv_usd": sched.owned_pv_usd,
            "rented_pv_usd": sched.rented_pv_usd,
        },
        "fleet": dataclasses.asdict(gc.fleet) if gc.fleet else None,
        "projection": dataclasses.asdict(gc.projection) if gc.projection else None,
        "cheapest": _cheapest(report, gc),
    }


def _cheapest(report: CostReport, gc: GpuCost) -> dict[str, Any] | None:
    """The headline's figures: the subject priced, the cheapest offer's $/Mtok, owned $/Mtok and their ratio."""
    h = headline_for(report, gc)
    if h is None:
        return None
    return {**dataclasses.asdict(h), "owned_over_rented": h.owned_over_rented, "text": h.text()}


def as_json(report: CostReport) -> dict[str, Any]:
    """Everything the tables show, as JSON values (`tokenbench cost --format json`)."""
    cat = report.catalog
    return {
        "headline": headline(report),
        "profile": cat.profile,
        "site": {k: v.model_dump() for k, v in cat.site.items()},
        "sensitivity_ranges": cat.sensitivity.model_dump(),
        "catalog_files": list(cat.files),
        "gpus": {gpu_id: _gpu(report, gc) for gpu_id, gc in report.gpus.items()},
        "contract": dataclasses.asdict(report.contract) if report.contract else None,
        "market_figures": [f.model_dump() for f in market.figures()],
        "rows": report.rows,
        "not_priced": report.skipped,
    }
