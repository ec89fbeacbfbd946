"""`tokenbench cost` over the hardware's life and at fleet scale: the headline, the life and year-by-year
tables, the fleet and the contract, the calibration against published TCO, and the dated market figures.

Reporting only: reads a `CostReport` / `GpuCost` (bench/cost/pricing.py), computes nothing new.
"""

from __future__ import annotations

from rich.console import RenderableType
from rich.table import Table

from bench.catalog import market
from bench.catalog.prices import Catalog, Offer
from bench.cost.fleet import Contract
from bench.cost.headline import headlines
from bench.cost.life import HOURS_PER_YEAR, rent_present_value
from bench.cost.model import BreakEven, crf
from bench.cost.pricing import CostReport, GpuCost
from bench.cost.scenario import calibration, rented_useful
from bench.cost.table import PlainTable
from bench.text import usd, whole_percent


def money(value: float, digits: int = 0) -> str:
    """Dollars with the sign in front: "-$13,740"."""
    return ("-" if value < 0 else "") + usd(abs(value), digits)


def headline(report: CostReport) -> list[str]:
    """Per GPU model: the cheapest rental and owning in $/Mtok (bench/cost/headline.py), then which way
    the decision goes and what would flip it."""
    lines = [h.text() for h in headlines(report)]
    for gc in report.gpus.values():
        if gc.decision is not None:
            lines.append(f"Decision: {gc.decision.text()}")
        elif gc.owned is None:
            lines.append(f"Decision: {gc.gpu}: no owned price to compare with renting ({gc.owned_reason})")
        else:
            lines.append(f"Decision: {gc.gpu}: no rental offer to compare with owning; add one with --catalog")
    return lines


def decline_text(be: BreakEven | None, has_owned: bool) -> str:
    """The break-even rent decline d* as a cell: owning wins while rents fall slower than d* (or rise faster)."""
    if be is None or not has_owned:
        return "-"
    if be.decline is None:
        return "any decline" if be.owning_cheaper_at_site else "no decline"
    if be.decline >= 0:
        return f"fall < {be.decline:.0%}/yr"
    return f"rise > {-be.decline:.0%}/yr"


def rent_pv(cat: Catalog, offer: Offer) -> float:
    """The present value of this offer's rent over the life, per GPU, for the hours it is paid."""
    u = cat.value("utilisation")
    hours = HOURS_PER_YEAR * (1.0 if offer.committed else u)
    rate, years = cat.value("cost_of_capital"), cat.value("depreciation_years")
    return rent_present_value(offer.usd_per_gpu_hour * hours, cat.optional("rent_decline"), rate, years)


def calibration_rows(cat: Catalog, gc: GpuCost) -> list[tuple[str, str, str]]:
    """Rows for the owned table: the published owned cost for this profile and GPU, and how far this is off."""
    rows = []
    for c in calibration(cat, gc.gpu):
        rows.append(
            (
                f"published: {c.owner} ({c.date})",
                f"{c.source}: ${c.published_usd_per_gpu_hour:.2f} per GPU-hour at {c.all_in_kw:g} kW all-in; the "
                f"{c.owner} profile as packaged ${c.board_usd_per_wall_hour:.3f} per wall-clock hour at the "
                f"board's TDP ({c.board_difference:+.1%}), ${c.all_in_usd_per_wall_hour:.3f} with energy at "
                f"{c.all_in_kw:g} kW ({c.all_in_difference:+.1%}); bench/cost/README.md explains the differences",
                usd(c.published_usd_per_gpu_hour, 3),
            )
        )
    return rows


def life_table(cat: Catalog, gc: GpuCost) -> Table | None:
    """Owned against the reference offer over the life, in level $ per hour and present values (4 decimals)."""
    o, ref, sched = gc.owned, gc.reference, gc.schedule
    if o is None or ref is None or sched is None:
        return None
    u, d = cat.value("utilisation"), cat.optional("rent_decline")
    t = PlainTable(
        title=f"Over the life on {gc.gpu}: owned against {ref.name} ${ref.usd_per_gpu_hour:g}/GPU-h "
        f"({gc.reference_why}), {o.years:g} years at {100 * o.rate:g}% cost of capital, per GPU",
    )
    for col, justify in (("item", "left"), ("formula", "left"), ("value", "right")):
        t.add_column(col, justify=justify, overflow="fold")
    capital = f"{usd(o.capital_usd, 0)} - {usd(o.residual_usd(), 0)} / {1 + o.rate:g}^{o.years:g}"
    t.add_row(
        "owned capital per year",
        f"({capital}) x CRF {crf(o.rate, o.years):.6f}",
        f"{usd(o.capital_usd_per_year())} a year = {usd(o.capital_usd_per_hour(), 4)}/GPU-hour",
    )
    t.add_row("owned per useful hour", "net $ per wall hour / utilisation", usd(o.usd_per_useful_hour(u), 4))
    if o.resale_fill > 0:
        gross = o.usd_per_wall_hour(u) / u
        t.add_row("  without resale", "$ per wall hour / utilisation", usd(gross, 4))
    hours = "every hour" if ref.committed else f"{whole_percent(u)} of hours"
    t.add_row("rent, year 1", f"${ref.usd_per_gpu_hour:g}/GPU-hour x {hours}, then x (1 - {d:g}) a year",
              usd(sched.rows[1].rented_usd))  # fmt: skip
    t.add_row("rent: present value", "sum of each year's rent / (1 + r)^year", usd(sched.rented_pv_usd))
    t.add_row(
        "rent: level equivalent",
        "the flat $/GPU-hour with the same present value",
        f"{usd(ref.usd_per_gpu_hour * gc.rent_level, 4)}/GPU-hour",
    )
    t.add_row("rented per useful hour", "level price" + (" / utilisation" if ref.committed else ""),
              usd(rented_useful(cat, ref, u), 4))  # fmt: skip
    t.add_row("owned: present value", "capital + operating costs - residual, discounted", usd(sched.owned_pv_usd))
    be = gc.break_even.get(ref.id)
    t.add_row("break-even utilisation", "owned = rented per useful hour", be.verdict if be else "-")
    t.add_row("break-even rent decline", "owning wins if rents (level rent at d* = owned per useful hour)",
              decline_text(be, True))  # fmt: skip
    t.add_row("owning overtakes renting", "cumulative owned <= rented (present value; cash)", _overtakes(gc))
    return t


def _overtakes(gc: GpuCost) -> str:
    sched = gc.schedule
    if sched is None:
        return "-"
    pv = f"year {sched.overtakes_year}" if sched.overtakes_year else "never within the life"
    cash = f"year {sched.overtakes_year_cash}" if sched.overtakes_year_cash else "never"
    return f"{pv} (cash: {cash})"


def year_table(gc: GpuCost) -> Table | None:
    """The life year by year: owned and rented $, cumulative, and cumulative present values."""
    sched = gc.schedule
    if sched is None or gc.reference is None:
        return None
    n = gc.fleet.gpus if gc.fleet is not None else 1
    scope = f"the fleet's {n:,} GPUs" if n > 1 else "one GPU"
    t = PlainTable(
        title=f"Year by year on {gc.gpu}, {scope}: owned (capital in year 0, the residual back in the last) against "
        f"renting {gc.reference.name}; owning overtakes renting: {_overtakes(gc)}",
    )
    for col in ("year", "owned $", "rented $", "owned cumulative", "rented cumulative", "owned PV cumulative",
                "rented PV cumulative"):  # fmt: skip
        t.add_column(col, justify="right", no_wrap=True)
    for r in sched.rows:
        values = (r.owned_usd, r.rented_usd, r.owned_cumulative_usd, r.rented_cumulative_usd,
                  r.owned_pv_cumulative_usd, r.rented_pv_cumulative_usd)  # fmt: skip
        t.add_row(str(r.year), *(money(v * n) for v in values))
    return t


def fleet_table(gc: GpuCost) -> Table:
    """Facility megawatts to GPUs, capital, yearly cost owned and rented, tokens and $/Mtok."""
    f = gc.fleet
    assert f is not None
    t = PlainTable(title=f"Fleet of {gc.gpu}: {f.facility_mw:,g} MW of facility power")
    for col, justify in (("item", "left"), ("formula", "left"), ("value", "right")):
        t.add_column(col, justify=justify, overflow="fold")
    rented = gc.reference
    rows = [
        ("IT power", f"{f.facility_mw:,g} MW / PUE {f.pue:g}", f"{f.it_kw / 1000:,.1f} MW"),
        ("GPUs", f"IT kW / {f.kw_per_gpu:g} kW provisioned per GPU, rounded down", f"{f.gpus:,}"),
        ("capital", "GPUs x capital per GPU", usd(f.capital_usd, 0)),
        ("owned $ a year", "GPUs x owned net $ per wall hour x 8760", usd(f.owned_usd_per_year, 0)),
        (f"rented $ a year ({rented.name})" if rented else "rented $ a year",
         "GPUs x utilisation x 8760 x rented $ per useful hour", usd(f.rented_usd_per_year, 0)),
        ("tokens a year", f"GPUs x {f.tokens_per_s_per_gpu:,.0f} tokens/s x {whole_percent(f.utilisation)} "
         "x 3600 x 8760", f"{f.tokens_per_year:.4g}"),
        ("$/Mtok owned; rented", "per useful hour / (tokens/s x 3600 / 1e6)",
         f"{usd(f.usd_per_mtok_owned, 4)}; {usd(f.usd_per_mtok_rented, 4)}"),
        ("tokens/s per provisioned MW", "tokens/s per GPU / kW per GPU x 1000 (InferenceX)",
         f"{f.tokens_per_s_per_provisioned_mw:,.0f}"),
    ]  # fmt: skip
    for row in rows:
        t.add_row(*row)
    return t


def contract_table(c: Contract) -> Table:
    """What a rental contract buys at a rate: GPU-hours, and GPUs running every hour of the term."""
    t = PlainTable(title=f"Contract: {usd(c.usd, 0)} over {c.years:g} years at ${c.usd_per_gpu_hour:g}/GPU-hour")
    for col, justify in (("item", "left"), ("formula", "left"), ("value", "right")):
        t.add_column(col, justify=justify, overflow="fold")
    t.add_row("GPU-hours", "value / rate", f"{c.gpu_hours:,.0f}")
    t.add_row("GPUs, every hour of the term", "GPU-hours / (years x 8760)", f"{c.gpus:,.0f}")
    return t


def market_table() -> Table:
    """The catalog's dated figures over the hardware's life and at fleet scale (* marks a weak one)."""
    t = PlainTable(title="Dated figures over the life and at fleet scale (bench/catalog/market.toml; * weak)")
    for col in ("topic", "figure", "value", "date", "source"):
        t.add_column(col, overflow="fold")
    for f in market.figures():
        t.add_row(f.topic, f.what, f.value_text() + ("*" if f.weak else ""), f.date, f.source)
    return t


def life_tables(cat: Catalog, gc: GpuCost) -> list[RenderableType]:
    """The life, year-by-year and fleet tables of one GPU model, those that apply."""
    out: list[RenderableType] = [x for x in (life_table(cat, gc), year_table(gc)) if x is not None]
    return [*out, fleet_table(gc)] if gc.fleet is not None else out
