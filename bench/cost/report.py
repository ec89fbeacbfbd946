"""`tokenbench cost` output: tables that show every assumption, and the same data as CSV or JSON.

Reporting only: reads a `CostReport` (bench/cost/pricing.py), computes nothing new.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

import pandas as pd
from rich.console import RenderableType
from rich.table import Table

from bench.catalog.prices import SITE_BOUNDS, Catalog, Offer, Sourced
from bench.cost.model import crf, rented_usd_per_useful_hour
from bench.cost.pricing import CostReport, GpuCost
from bench.text import token_rate, usd, whole_percent

TERM_SHORT = {"on-demand": "on-demand", "1-year": "1-yr", "3-year": "3-yr"}
PARAMETER_TEXT = {
    "depreciation_years": "depreciation (years)",
    "utilisation": "utilisation",
    "pue": "PUE",
    "usd_per_kwh": "electricity ($/kWh)",
    "maintenance_share": "maintenance (/yr of capital)",
    "rental_price": "rental price (x)",
    "capital": "capital (x)",
}


def _weak(item: Sourced) -> str:
    return "*" if item.weak else ""


def _source(item: Sourced) -> str:
    return item.source + (f" <{item.source_url}>" if item.source_url else "")


def site_value_text(name: str, value: float) -> str:
    """A site figure with its unit: "60%", "$0.1/kWh", "5 years"."""
    if name in ("cost_of_capital", "maintenance_share", "utilisation"):
        return f"{100 * value:g}%"
    if name == "usd_per_kwh":
        return f"${value:g}/kWh"
    if name == "colo_usd_per_kw_month":
        return f"${value:g}/kW-month"
    if name == "depreciation_years":
        return f"{value:g} years"
    return f"{value:g}"


def site_table(cat: Catalog) -> Table:
    """Every site figure of the owned scenario, with its date and source (* marks a weak one)."""
    t = Table(title="Site assumptions (owned scenario)", title_justify="left", header_style="bold")
    for col in ("figure", "value", "date", "source"):
        t.add_column(col, overflow="fold")
    for name in SITE_BOUNDS:
        item = cat.site[name]
        t.add_row(name, site_value_text(name, item.value) + _weak(item), item.date, _source(item))
    return t


def owned_table(cat: Catalog, gc: GpuCost) -> Table | None:
    """The owned GPU's $ per hour item by item, each with its formula; None without a server price."""
    o, server = gc.owned, cat.server_for(gc.gpu)
    if o is None or server is None:
        return None
    u = cat.value("utilisation")
    p = gc.focus.power
    t = Table(
        title=f"Owned {gc.gpu}: $ per GPU-hour at {whole_percent(u)} utilisation",
        title_justify="left",
        header_style="bold",
    )
    t.add_column("item", overflow="fold")
    t.add_column("formula", overflow="fold")
    t.add_column("$/GPU-hour", justify="right", no_wrap=True)
    share = server.network_share
    t.add_row(
        f"server{_weak(server)}: {server.product}, {server.date}",
        f"{usd(server.usd, 0)} / {server.gpus} GPUs / (1 - {share:g} network share) = {usd(o.capital_usd, 0)} per GPU",
        "",
    )
    t.add_row(
        "capital recovery",
        f"{usd(o.capital_usd, 0)} x CRF({100 * o.rate:g}%, {o.years:g} y) {crf(o.rate, o.years):.4f} / 8760 h",
        usd(o.capital_usd_per_hour(), 3),
    )
    t.add_row(
        "maintenance",
        f"{usd(o.capital_usd, 0)} x {100 * o.maintenance_share:g}% / 8760 h",
        usd(o.maintenance_usd_per_hour(), 3),
    )
    t.add_row(
        "colocation",
        f"{o.provisioned_kw:g} kW provisioned x ${o.colo_usd_per_kw_month:g}/kW-month x 12 / 8760 h",
        usd(o.colo_usd_per_hour(), 3),
    )
    t.add_row(
        "energy",
        f"({p.active_w:.0f} W x {whole_percent(u)} + {p.idle_w:.0f} W idle x {whole_percent(1 - u)}) x PUE {o.pue:g}"
        f" x ${o.usd_per_kwh:g}/kWh; GPU board power only (the host's share is not measured); "
        f"active: {p.active_from}; idle: {p.idle_from}",
        usd(o.energy_usd_per_wall_hour(u), 3),
    )
    t.add_row("per wall-clock hour", "sum of the above", usd(o.usd_per_wall_hour(u), 3))
    t.add_row("per useful hour", f"/ {whole_percent(u)} utilisation", f"[bold]{usd(o.usd_per_useful_hour(u), 3)}[/]")
    return t


def offers_table(cat: Catalog, gc: GpuCost) -> Table:
    """Each rental offer, its $ per useful hour, and owning against it: break-even and payback."""
    u = cat.value("utilisation")
    life = cat.value("depreciation_years") * 12
    owned_at = f" (owned at {gc.focus.power.active_w:.0f} W)" if gc.owned else " (no owned price to compare)"
    t = Table(
        title=f"Rented {gc.gpu}, and owning against each offer{owned_at}",
        title_justify="left",
        header_style="bold",
    )
    for col, justify in (
        ("key", "left"),
        ("offer", "left"),
        ("term", "left"),
        ("$/GPU-h", "right"),
        (f"$/useful h at {whole_percent(u)}", "right"),
        ("date", "left"),
        ("break-even", "left"),
        ("payback months", "right"),
        ("source", "left"),
    ):
        t.add_column(col, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for key, offer in zip(offer_keys(gc), gc.offers, strict=True):
        be = gc.break_even.get(offer.id)
        months = "-"
        if be and be.payback_months is not None:
            months = f"{be.payback_months:.0f}" + (f" (> {life:.0f}-month life)" if be.payback_months > life else "")
        t.add_row(
            key,
            f"{offer.provider}: {offer.product}",
            offer.term,
            usd(offer.usd_per_gpu_hour) + _weak(offer),
            usd(_useful(offer, u)),
            offer.date,
            be.verdict if be else "-",
            months,
            offer.source,
        )
    return t


def offer_keys(gc: GpuCost) -> list[str]:
    """Short column keys for the offers (A, B, ...), as the offers table lists them."""
    return [chr(ord("A") + i) if i < 26 else f"O{i}" for i in range(len(gc.offers))]


def _useful(offer: Offer, u: float) -> float:
    return rented_usd_per_useful_hour(offer.usd_per_gpu_hour, offer.committed, u)


def mtok_table(report: CostReport, gc: GpuCost) -> Table:
    """Rows: each priced record and token kind; columns: owned and each offer, keyed as in the offers table."""
    rows = [r for r in report.rows if r["gpu"] == gc.gpu]
    has_owned = gc.owned is not None
    u = report.catalog.value("utilisation")
    t = Table(
        title=f"$ per million tokens on {gc.gpu}: owned at {whole_percent(u)} utilisation, "
        "and under each offer (keys as in the offers table; each token kind carries the whole cost)",
        title_justify="left",
        header_style="bold",
    )
    t.add_column("record", overflow="fold", min_width=10)
    for col in ("tokens", "tok/s", "user tok/s", "W", *(("owned",) if has_owned else ())):
        t.add_column(col, justify="left" if col == "tokens" else "right", no_wrap=True)
    keys = offer_keys(gc)
    for key, offer in zip(keys, gc.offers, strict=True):
        t.add_column(key + _weak(offer), justify="right", no_wrap=True)
    order: list[tuple[Any, ...]] = []
    cells_by: dict[tuple[Any, ...], dict[str, dict[str, Any]]] = {}
    for r in rows:
        k = (r["run_id"], r["seq"], r["label"], r["tokens"])
        if k not in cells_by:
            order.append(k)
            cells_by[k] = {}
        cells_by[k][r["scenario"]] = r
    for k in order:
        cells = cells_by[k]
        first = next(iter(cells.values()))
        watts = f"{first['power_w']:.0f}" + ("~" if first["power_from"].startswith("estimate") else "")
        seq = f"#{first['seq']} " if first["seq"] is not None else ""
        t.add_row(
            seq + first["label"],
            first["tokens"],
            token_rate(first["tokens_per_s"]),
            token_rate(first["per_user_tokens_per_s"]),
            watts,
            *((usd(cells["owned"]["usd_per_mtok"], 4),) if has_owned else ()),
            *(usd(cells[o.id]["usd_per_mtok"], 4) if o.id in cells else "-" for o in gc.offers),
        )
    return t


def sensitivity_table(cat: Catalog, gc: GpuCost) -> Table | None:
    """Owned / rented cost as each figure swings over its range, widest first; None without both prices."""
    if not gc.sensitivity or gc.reference is None or gc.owned is None:
        return None
    u = cat.value("utilisation")
    ref = gc.reference
    base = gc.owned.usd_per_useful_hour(u) / _useful(ref, u)
    t = Table(
        title=f"Sensitivity on {gc.gpu}, one figure at a time: owned / rented cost against {ref.provider} "
        f"{ref.term} ({usd(ref.usd_per_gpu_hour)}/GPU-h, the cheapest offer); base {base:.2f} (below 1 owning is "
        "cheaper)",
        title_justify="left",
        header_style="bold",
    )
    for col, justify in (
        ("figure", "left"),
        ("low", "right"),
        ("high", "right"),
        ("owned $/useful h, low", "right"),
        ("owned $/useful h, high", "right"),
        ("owned/rented, low", "right"),
        ("owned/rented, high", "right"),
    ):
        t.add_column(col, justify=justify)  # type: ignore[arg-type]
    for s in sorted(gc.sensitivity, key=lambda s: -abs(s.ratio_high - s.ratio_low)):
        t.add_row(
            PARAMETER_TEXT[s.parameter],
            f"{s.low:g}",
            f"{s.high:g}",
            usd(s.owned_usd_per_useful_hour_low, 3),
            usd(s.owned_usd_per_useful_hour_high, 3),
            f"{s.ratio_low:.2f}",
            f"{s.ratio_high:.2f}",
        )
    return t


def projection_table(gc: GpuCost) -> Table | None:
    """The training-run projection step by step, and its $ owned and under each offer; None without one."""
    p = gc.projection
    if p is None:
        return None
    t = Table(
        title=f"Training run on {gc.gpu}: {p.params:.3g} parameters on {p.tokens:.3g} tokens, {p.n_gpus} GPUs",
        title_justify="left",
        header_style="bold",
    )
    t.add_column("item", overflow="fold")
    t.add_column("value", justify="right", overflow="fold")
    t.add_row("FLOPs = 6 N D", f"{p.flops:.3e}")
    t.add_row(f"MFU ({p.mfu_from})", whole_percent(p.mfu) if p.mfu >= 0.01 else f"{100 * p.mfu:.2g}%")
    t.add_row(f"dense {p.dtype} peak", f"{p.peak_flops / 1e12:g} TFLOP/s")
    t.add_row("GPU-hours = FLOPs / (MFU x peak) / 3600", f"{p.gpu_hours:,.0f}")
    t.add_row(f"days on {p.n_gpus} GPUs (perfect scaling)", f"{p.days:,.1f}")
    t.add_row(f"energy = GPU-hours x {p.power_w:.0f} W ({p.power_from}) x PUE", f"{p.energy_mwh:,.1f} MWh")
    offers = {o.id: o for o in gc.offers}
    for scenario, usd_total in p.usd.items():
        offer = offers.get(scenario)
        name = "owned" if offer is None else f"{offer.provider} {offer.term}"
        per_useful_hour = usd(p.usd_per_useful_hour[scenario], 3)
        how = (
            "paid per hour used"
            if offer is not None and not offer.committed
            else f"amortised at {whole_percent(p.utilisation)}"
        )
        t.add_row(f"$ {name} ({per_useful_hour} per useful GPU-hour, {how})", usd(usd_total, 0))
    return t


def render(report: CostReport) -> list[RenderableType]:
    """Every table of `tokenbench cost`: the site, then per GPU owned, offers, $/Mtok, sensitivity, projection."""
    cat = report.catalog
    out: list[RenderableType] = [site_table(cat)]
    for gc in report.gpus.values():
        out += [x for x in (owned_table(cat, gc), offers_table(cat, gc), mtok_table(report, gc)) if x is not None]
        out += [x for x in (sensitivity_table(cat, gc), projection_table(gc)) if x is not None]
    return out


def notes(report: CostReport) -> list[str]:
    """The lines under the tables: the catalog used, the formulas, each GPU's focus power and what was not priced."""
    cat = report.catalog
    lines = [
        f"catalog: packaged{''.join(f' + {f}' for f in cat.files)}; * marks a weak figure (see its note in "
        "bench/catalog/*.toml); ~ marks a power figure estimated from the TDP",
        "$/Mtok = $ per useful GPU-hour / (tokens/s per GPU x 3600 / 1e6); a committed (1- or 3-year) rental is "
        "paid every hour, so it is divided by utilisation like an owned GPU; on-demand is not",
        "payback months: when the monthly saving (rent - maintenance, colocation and energy), discounted at the cost "
        "of capital, has repaid the capital; a training run's owned and committed costs are amortised: they assume "
        "the fleet stays busy at the site utilisation (a whole committed term costs more)",
    ]
    for gc in report.gpus.values():
        f = gc.focus
        where = f" (run {f.run_id} seq {f.seq})" if f.run_id else ""
        if gc.owned:
            lines.append(
                f"{gc.gpu}: owned, break-even and sensitivity at the power of {f.label}{where}: "
                f"{f.power.active_w:.0f} W ({f.power.active_from}), idle {f.power.idle_w:.0f} W ({f.power.idle_from})"
            )
        if gc.owned_reason:
            lines.append(f"{gc.gpu}: {gc.owned_reason}")
        if not gc.offers:
            lines.append(f"{gc.gpu}: no rental offers in the catalog; add [[offer]] tables with --catalog")
    reasons = Counter(s["reason"] for s in report.skipped)
    for reason, n in reasons.most_common():
        lines.append(f"not priced: {n} record(s): {reason}")
    return lines


def frame(report: CostReport) -> pd.DataFrame:
    """The $/Mtok rows, long form: one per record, token kind and scenario."""
    return pd.DataFrame(report.rows)


def as_json(report: CostReport) -> dict[str, Any]:
    """Everything the tables show, as JSON values (`tokenbench cost --format json`)."""
    cat = report.catalog
    gpus_out: dict[str, Any] = {}
    for gpu_id, gc in report.gpus.items():
        u = cat.value("utilisation")
        o = gc.owned
        gpus_out[gpu_id] = {
            "focus": dataclasses.asdict(gc.focus),
            "owned": None
            if o is None
            else {
                **dataclasses.asdict(o),
                "server": cat.server_for(gpu_id).model_dump(),  # type: ignore[union-attr]
                "capital_usd_per_hour": o.capital_usd_per_hour(),
                "maintenance_usd_per_hour": o.maintenance_usd_per_hour(),
                "colo_usd_per_hour": o.colo_usd_per_hour(),
                "energy_usd_per_wall_hour": o.energy_usd_per_wall_hour(u),
                "usd_per_wall_hour": o.usd_per_wall_hour(u),
                "usd_per_useful_hour": o.usd_per_useful_hour(u),
            },
            "owned_reason": gc.owned_reason,
            "offers": [
                {**offer.model_dump(), "break_even": dataclasses.asdict(gc.break_even[offer.id])}
                if offer.id in gc.break_even
                else offer.model_dump()
                for offer in gc.offers
            ],
            "sensitivity_reference": gc.reference.id if gc.reference else None,
            "sensitivity": [dataclasses.asdict(s) for s in gc.sensitivity],
            "projection": dataclasses.asdict(gc.projection) if gc.projection else None,
        }
    return {
        "site": {k: v.model_dump() for k, v in cat.site.items()},
        "sensitivity_ranges": cat.sensitivity.model_dump(),
        "catalog_files": list(cat.files),
        "gpus": gpus_out,
        "rows": report.rows,
        "not_priced": report.skipped,
    }
