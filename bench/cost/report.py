"""`tokenbench cost` output: tables that show every assumption.

Reporting only: reads a `CostReport` (bench/cost/pricing.py), computes nothing new. The tables over
the life and at fleet scale are bench/cost/report_life.py; CSV and JSON are bench/cost/export.py.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from bench.catalog.prices import OPTIONAL_SITE_BOUNDS, SITE_BOUNDS, Catalog, Sourced
from bench.catalog.profiles import DEFAULT_PROFILE, profile_names
from bench.cost import report_life
from bench.cost.model import Owned, crf
from bench.cost.pricing import CostReport, GpuCost
from bench.cost.scenario import rented_useful
from bench.cost.table import PlainTable
from bench.text import token_rate, usd, whole_percent

TERM_SHORT = {"on-demand": "on-demand", "1-year": "1-yr", "3-year": "3-yr"}
PARAMETER_TEXT = {
    "depreciation_years": "life: depreciation (years)",
    "utilisation": "utilisation",
    "pue": "PUE",
    "usd_per_kwh": "electricity ($/kWh)",
    "maintenance_share": "maintenance (/yr of capital)",
    "rental_price": "rental price (x)",
    "capital": "capital (x)",
    "residual_share": "residual value (/capital)",
    "rent_decline": "rent decline (/yr)",
    "resale_price": "resale price (x)",
}


def _weak(item: Sourced) -> str:
    return "*" if item.weak else ""


def _source(item: Sourced) -> str:
    return item.source + (f" <{item.source_url}>" if item.source_url else "")


def site_value_text(name: str, value: float) -> str:
    """A site figure with its unit: "60%", "$0.1/kWh", "5 years"."""
    if name in ("cost_of_capital", "maintenance_share", "utilisation", "residual_share", "resale_fill"):
        return f"{100 * value:g}%"
    if name == "rent_decline":
        return f"{100 * value:g}% a year" + (" (a rise)" if value < 0 else "")
    if name == "resale_usd_per_gpu_hour":
        return f"${value:g}/GPU-hour"
    if name == "usd_per_kwh":
        return f"${value:g}/kWh"
    if name == "colo_usd_per_kw_month":
        return f"${value:g}/kW-month"
    if name == "depreciation_years":
        return f"{value:g} years"
    return f"{value:g}"


def profile_text(cat: Catalog) -> str:
    """The owner profile in use, and whether it is the default: "profile enterprise (the default)"."""
    others = [n for n in profile_names() if n != cat.profile]
    default = " (the default)" if cat.profile == DEFAULT_PROFILE else ""
    return f"profile {cat.profile}{default}; --profile {' or '.join(others)} to change"


def site_table(cat: Catalog) -> Table:
    """Every site figure of the owned scenario, with its date and source (* marks a weak one)."""
    title = f"Site assumptions (owned scenario; {profile_text(cat)})"
    t = PlainTable(title=title)
    for col in ("figure", "value", "date", "source"):
        t.add_column(col, overflow="fold")
    for name in [*SITE_BOUNDS, *(n for n in OPTIONAL_SITE_BOUNDS if n in cat.site)]:
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
    t = PlainTable(
        title=f"Owned {gc.gpu}: $ per GPU-hour at {whole_percent(u)} utilisation",
    )
    t.add_column("item", overflow="fold")
    t.add_column("formula", overflow="fold")
    t.add_column("$/GPU-hour", justify="right", no_wrap=True)
    share = server.network_share
    mine = cat.server_file(server.id)
    t.add_row(
        f"server{_weak(server)}: {server.product}, {server.date}" + (f" (your quote, {mine})" if mine else ""),
        f"{usd(server.usd, 0)} / {server.gpus} GPUs / (1 - {share:g} network share) = {usd(o.capital_usd, 0)} per GPU",
        "",
    )
    t.add_row("capital recovery", _capital_formula(o), usd(o.capital_usd_per_hour(), 3))
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
    if o.resale_fill > 0:
        h = o.resold_share(u)
        t.add_row(
            "resold hours' energy",
            f"{h:.1%} of hours resold x (active - idle) energy",
            usd(o.resale_energy_usd_per_wall_hour(u), 3),
        )
        t.add_row(
            "resale of idle hours",
            f"- {whole_percent(1 - u)} idle x {o.resale_fill:.0%} fill x ${o.resale_usd_per_gpu_hour:g}/GPU-hour",
            report_life.money(-o.resale_usd_per_wall_hour(u), 3),
        )
        t.add_row("net per wall-clock hour", "sum of the above", usd(o.net_usd_per_wall_hour(u), 3))
    t.add_row(
        "per useful hour", f"/ {whole_percent(u)} utilisation", Text(usd(o.usd_per_useful_hour(u), 3), style="bold")
    )
    for row in report_life.calibration_rows(cat, gc):
        t.add_row(*row)
    return t


def _capital_formula(o: Owned) -> str:
    """capital x CRF, or with a residual value (P - S/(1+r)^n) x CRF."""
    factor = f"CRF({100 * o.rate:g}%, {o.years:g} y) {crf(o.rate, o.years):.4f}"
    if o.residual_share == 0:
        return f"{usd(o.capital_usd, 0)} x {factor} / 8760 h"
    residual = f"{usd(o.residual_usd(), 0)} residual ({o.residual_share:.0%}) / {1 + o.rate:g}^{o.years:g}"
    return f"({usd(o.capital_usd, 0)} - {residual}) x {factor} / 8760 h"


def offers_table(cat: Catalog, gc: GpuCost) -> Table:
    """Each rental offer, its $ per useful hour, and owning against it: break-even (utilisation, decline), payback."""
    u = cat.value("utilisation")
    life = cat.value("depreciation_years") * 12
    level = gc.rent_level != 1.0
    owned_at = f" (owned at {gc.focus.power.active_w:.0f} W)" if gc.owned else " (no owned price to compare)"
    t = PlainTable(
        title=f"Rented {gc.gpu}, and owning against each offer{owned_at}",
    )
    columns = [("key", "left"), ("offer", "left"), ("term", "left"), ("$/GPU-h", "right")]
    if level:
        columns.append((f"level $/GPU-h, {cat.optional('rent_decline'):.0%}/yr fall", "right"))
        columns.append((f"rent PV over {cat.value('depreciation_years'):g} y", "right"))
    columns += [(f"$/useful h at {whole_percent(u)}", "right"), ("date", "left"), ("break-even", "left")]
    columns += [("owning wins if rents", "left"), ("payback months", "right"), ("source", "left")]
    for col, justify in columns:
        t.add_column(col, justify=justify, overflow="fold")
    for key, offer in zip(offer_keys(gc), gc.offers, strict=True):
        be = gc.break_even.get(offer.id)
        months = "-"
        if be and be.payback_months is not None:
            months = f"{be.payback_months:.0f}" + (f" (> {life:.0f}-month life)" if be.payback_months > life else "")
        cells = [key, f"{offer.provider}: {offer.product}", offer.term, usd(offer.usd_per_gpu_hour) + _weak(offer)]
        if level:
            cells.append(usd(offer.usd_per_gpu_hour * gc.rent_level, 4))
            cells.append(usd(report_life.rent_pv(cat, offer)))
        cells += [usd(rented_useful(cat, offer, u)), offer.date, be.verdict if be else "-"]
        cells += [report_life.decline_text(be, gc.owned is not None), months, offer.source]
        t.add_row(*cells)
    return t


def offer_keys(gc: GpuCost) -> list[str]:
    """Short column keys for the offers (A, B, ...), as the offers table lists them."""
    return [chr(ord("A") + i) if i < 26 else f"O{i}" for i in range(len(gc.offers))]


def mtok_table(report: CostReport, gc: GpuCost) -> Table:
    """Rows: each priced record and token kind; columns: owned and each offer, keyed as in the offers table."""
    rows = [r for r in report.rows if r["gpu"] == gc.gpu]
    has_owned = gc.owned is not None
    u = report.catalog.value("utilisation")
    t = PlainTable(
        title=f"$ per million tokens on {gc.gpu}: owned at {whole_percent(u)} utilisation, "
        "and under each offer (keys as in the offers table; each token kind carries the whole cost)",
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
    base = gc.owned.usd_per_useful_hour(u) / rented_useful(cat, ref, u)
    t = PlainTable(
        title=f"Sensitivity on {gc.gpu}, one figure at a time: owned / rented cost against {ref.name} "
        f"({usd(ref.usd_per_gpu_hour)}/GPU-h, {gc.reference_why}); base {base:.2f} (below 1 owning is "
        "cheaper)",
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
        t.add_column(col, justify=justify)
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
    t = PlainTable(
        title=f"Training run on {gc.gpu}: {p.params:.3g} parameters on {p.tokens:.3g} tokens, {p.n_gpus} GPUs",
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
        name = "owned" if offer is None else offer.name
        per_useful_hour = usd(p.usd_per_useful_hour[scenario], 3)
        how = (
            "paid per hour used"
            if offer is not None and not offer.committed
            else f"amortised at {whole_percent(p.utilisation)}"
        )
        t.add_row(f"$ {name} ({per_useful_hour} per useful GPU-hour, {how})", usd(usd_total, 0))
    return t


def render(report: CostReport, over_life: bool = False) -> list[RenderableType]:
    """Every table of `tokenbench cost`: the site, then per GPU owned, offers, $/Mtok, sensitivity, projection.

    `over_life` (any of the life, resale, profile or fleet options given) adds the life, the year-by-year
    and the fleet tables per GPU, the contract and the dated market figures they rest on."""
    cat = report.catalog
    out: list[RenderableType] = [site_table(cat)]
    for gc in report.gpus.values():
        out += [x for x in (owned_table(cat, gc), offers_table(cat, gc), mtok_table(report, gc)) if x is not None]
        out += [x for x in (sensitivity_table(cat, gc), projection_table(gc)) if x is not None]
        if over_life:
            out += report_life.life_tables(cat, gc)
        elif gc.fleet is not None:
            out += [report_life.fleet_table(gc)]
    if report.contract is not None:
        out.append(report_life.contract_table(report.contract))
    if over_life:
        out.append(report_life.market_table())
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
        f"maintenance {100 * cat.value('maintenance_share'):g}% a year of the capital: the catalog's range runs from "
        "0.5% (a one-off ~3% service fee over 6 years, --profile neocloud or hyperscaler) to 20% (a DGX support "
        "contract at list price); the sensitivity table shows what it moves",
    ]
    for gc in report.gpus.values():
        f = gc.focus
        where = f" (run {f.run_id} seq {f.seq})" if f.run_id else ""
        if gc.owned:
            lines.append(
                f"{gc.gpu}: owned, break-even and sensitivity at the power of {f.label}{where}: "
                f"{f.power.active_w:.0f} W ({f.power.active_from}), idle {f.power.idle_w:.0f} W ({f.power.idle_from})"
            )
        server = cat.server_for(gc.gpu)
        if server is not None and cat.server_file(server.id):
            lines.append(
                f"{gc.gpu}: owned at your [[server]] {server.id!r} ({cat.server_file(server.id)}), which takes "
                "precedence over the packaged entries for that GPU"
            )
        if gc.owned_reason:
            lines.append(f"{gc.gpu}: {gc.owned_reason}")
        if not gc.offers:
            lines.append(f"{gc.gpu}: no rental offers in the catalog; add [[offer]] tables with --catalog")
    reasons = Counter(s["reason"] for s in report.skipped)
    for reason, n in reasons.most_common():
        lines.append(f"not priced: {n} record{'' if n == 1 else 's'}: {reason}")
    return lines
