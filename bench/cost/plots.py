"""`tokenbench cost --plots DIR`: $/Mtok owned against rented across utilisation, the tornado, and the
cumulative cost owned against rented over the life.

Each plot is written as PNG and SVG. Reporting only: reads a `CostReport`, measures nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt
import numpy as np

from bench.catalog.prices import Catalog
from bench.cost.model import rented_usd_per_useful_hour, usd_per_mtok
from bench.cost.pricing import CostReport, GpuCost
from bench.cost.report import PARAMETER_TEXT
from bench.cost.scenario import owned_for, rented_useful

UTILISATION = np.linspace(0.05, 1.0, 96)
TICK_STEPS = (1.0, 2.0, 5.0)  # log-axis ticks at 1, 2 and 5 of each decade: $0.20, $0.50, $1


def money(value: float) -> str:
    """A price as people write it: "$0.20", "$1", "$12.50", "$1,000"; under a cent to 2 significant digits."""
    if value == 0:
        return "$0"
    if abs(value) < 0.01:
        return f"${value:.2g}"
    if abs(value) >= 1 and float(value).is_integer():
        return f"${value:,.0f}"
    return f"${value:,.2f}"


def plain_number(value: float) -> str:
    """An axis number without exponents: 0.05, 1, 2, 500, 2,000, 1,000,000."""
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def plain_log_axis(axis: Any, fmt: Callable[[float], str] = plain_number, base: float = 10.0) -> None:
    """A log axis ticked in plain numbers (1, 2, 5, 10 ...; over 3 decades 1, 10, 100 ...; with base 2: 1, 2, 4,
    8 ...), no minor labels. Call it after the data is drawn."""
    lo, hi = sorted(abs(v) for v in axis.get_view_interval())
    wide = lo > 0 and np.log10(hi / lo) > 3  # over 3 decades: 1, 2, 5 in each would crowd the axis
    subs = TICK_STEPS if base == 10 and not wide else (1.0,)
    axis.set_major_locator(matplotlib.ticker.LogLocator(base=base, subs=subs, numticks=15))
    axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _pos: fmt(v)))
    axis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def _save(fig: plt.Figure, out_dir: Path, stem: str) -> list[Path]:
    paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.svg"]
    for p in paths:
        fig.savefig(p, dpi=150 if p.suffix == ".png" else None, bbox_inches="tight", metadata=_metadata(p))
    plt.close(fig)
    return paths


def _metadata(path: Path) -> dict[str, str | None]:
    # No creation date in the files, so the same report gives the same bytes.
    return {"Software": None} if path.suffix == ".png" else {"Date": None, "Creator": None}


def crossings(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> list[float]:
    """Where curve a crosses curve b along x (linear between grid points): the break-even points."""
    d = a - b
    out = []
    for i in range(len(x) - 1):
        if d[i] == 0:
            out.append(float(x[i]))
        elif d[i] * d[i + 1] < 0:
            out.append(float(x[i] + (x[i + 1] - x[i]) * d[i] / (d[i] - d[i + 1])))
    return out


def _offer_curves(ax: Any, gc: GpuCost, tps: float, owned_y: np.ndarray | None) -> None:
    """One line per offer, each break-even crossing with the owned line marked and labelled."""
    for offer in gc.offers:
        y = np.array([
            usd_per_mtok(rented_usd_per_useful_hour(offer.usd_per_gpu_hour * gc.rent_level, offer.committed, u), tps)
            for u in UTILISATION
        ])  # fmt: skip
        (line,) = ax.plot(UTILISATION, y, "--" if offer.committed else "-", linewidth=1.2,
                          label=f"{offer.name} {money(offer.usd_per_gpu_hour)}/GPU-h"
                                f"{'*' if offer.weak else ''}")  # fmt: skip
        for u in [] if owned_y is None else crossings(UTILISATION, owned_y, y):
            cost = float(np.interp(u, UTILISATION, y))
            ax.plot([u], [cost], "o", markersize=7, markerfacecolor="white", color=line.get_color(), zorder=4)
            ax.annotate(f"break-even {u:.0%}", (u, cost), xytext=(5, 5), textcoords="offset points", fontsize=7,
                        color=line.get_color())  # fmt: skip


def utilisation_plot(cat: Catalog, gc: GpuCost) -> plt.Figure | None:
    """$/Mtok of the focus subject against utilisation: owned, and each offer, break-evens circled."""
    kind, tps = gc.focus.bases[0]
    owned = owned_for(cat, gc.gpu, gc.focus.power)
    if owned is None and not gc.offers:
        return None
    fig, ax = plt.subplots(figsize=(8, 5))
    owned_y = None
    if owned is not None:
        owned_y = np.array([usd_per_mtok(owned.usd_per_useful_hour(u), tps) for u in UTILISATION])
        ax.plot(UTILISATION, owned_y, color="black", linewidth=2.5, label="owned")
    _offer_curves(ax, gc, tps, owned_y)
    site_u = cat.value("utilisation")
    ax.axvline(site_u, color="grey", linestyle=":", linewidth=1)
    ax.annotate(f"site {site_u:.0%}", (site_u, 1), xycoords=("data", "axes fraction"), fontsize=8, ha="right",
                va="top", rotation=90, color="grey")  # fmt: skip
    ax.set_yscale("log")
    plain_log_axis(ax.yaxis, money)
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=0))
    ax.set_xlabel("utilisation (share of wall-clock hours doing useful work)")
    kind_text = "" if kind == "tokens" else f"{kind} "
    ax.set_ylabel(f"$ per million {kind_text}tokens")
    ax.set_title(
        f"{gc.gpu}: {gc.focus.label}, {tps:,.0f} {kind_text}tokens/s per GPU\n"
        "owned (black) against rented; committed terms dashed (paid every hour); circles: break-even with owned",
        fontsize=10,
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def tornado_plot(cat: Catalog, gc: GpuCost) -> plt.Figure | None:
    """Owned / rented cost against the reference offer, each figure swung over its range."""
    if not gc.sensitivity or gc.reference is None or gc.owned is None:
        return None
    u = cat.value("utilisation")
    ref = gc.reference
    base = gc.owned.usd_per_useful_hour(u) / rented_useful(cat, ref, u)
    rows = sorted(gc.sensitivity, key=lambda s: abs(s.ratio_high - s.ratio_low))  # widest on top
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(rows) + 1.6))
    for i, s in enumerate(rows):
        if max(abs(s.ratio_low - base), abs(s.ratio_high - base)) < 0.005 * base:
            ax.annotate(f"{s.low:g} to {s.high:g}: no visible effect", (base, i), fontsize=8, va="center",
                        xytext=(4, 0), textcoords="offset points")  # fmt: skip
            continue
        for value, ratio, colour in ((s.low, s.ratio_low, "tab:blue"), (s.high, s.ratio_high, "tab:orange")):
            ax.barh(i, ratio - base, left=base, color=colour, height=0.6)
            right = ratio >= base
            ax.annotate(f"{value:g}", (ratio, i), fontsize=8, va="center", ha="left" if right else "right",
                        xytext=(3 if right else -3, 0), textcoords="offset points")  # fmt: skip
    ax.set_yticks(range(len(rows)), [PARAMETER_TEXT[s.parameter] for s in rows])
    ax.axvline(base, color="black", linewidth=1)
    ax.annotate(f"base {base:.2f}: every figure\nat the catalog's value", (base, 1.0),
                xycoords=("data", "axes fraction"), xytext=(0, 4), textcoords="offset points", ha="center",
                va="bottom", fontsize=8)  # fmt: skip
    ax.axvline(1.0, color="red", linestyle="--", linewidth=1)
    ax.set_xlabel("owned / rented cost per token (below 1: owning is cheaper; red dashed: break-even)")
    ax.set_title(
        f"{gc.gpu}: what moves owned against rented ({ref.name} {money(ref.usd_per_gpu_hour)}/GPU-h)"
        f"\nbars: the ratio as one figure swings (blue: its low end, orange: its high end), the rest at the base",
        fontsize=10,
        pad=28,
    )
    ax.grid(True, axis="x", alpha=0.3)
    return fig


def cumulative_plot(cat: Catalog, gc: GpuCost) -> plt.Figure | None:
    """Cumulative cost owned against rented over the life, cash and present value (the year-by-year table)."""
    sched, ref = gc.schedule, gc.reference
    if sched is None or ref is None or gc.owned is None:
        return None
    n = gc.fleet.gpus if gc.fleet is not None else 1
    years = [r.year for r in sched.rows]
    fig, ax = plt.subplots(figsize=(8, 5))
    series = (
        ("owned", [r.owned_cumulative_usd for r in sched.rows], "black", "-"),
        (f"rented ({ref.name})", [r.rented_cumulative_usd for r in sched.rows], "tab:orange", "-"),
        ("owned, present value", [r.owned_pv_cumulative_usd for r in sched.rows], "black", ":"),
        ("rented, present value", [r.rented_pv_cumulative_usd for r in sched.rows], "tab:orange", ":"),
    )
    for label, values, colour, style in series:
        ax.plot(years, np.array(values) * n, style, color=colour, marker="o", linewidth=2, label=label)
    if sched.overtakes_year is not None:
        ax.axvline(sched.overtakes_year, color="grey", linestyle="--", linewidth=1)
        ax.annotate(f"owning overtakes\nrenting: year {sched.overtakes_year}", (sched.overtakes_year, 0.02),
                    xycoords=("data", "axes fraction"), xytext=(4, 0), textcoords="offset points", fontsize=8,
                    color="grey")  # fmt: skip
    ax.set_xticks(years)
    ax.set_xlabel("year (capital paid in year 0; the residual value comes back in the last year)")
    scope = f"{n:,} GPUs" if n > 1 else "one GPU"
    ax.set_ylabel(f"cumulative $ ({scope})")
    d = cat.optional("rent_decline")
    over = "never" if sched.overtakes_year is None else f"year {sched.overtakes_year}"
    ax.set_title(
        f"{gc.gpu}: cumulative cost over {gc.owned.years:g} years at {cat.value('utilisation'):.0%} utilisation; "
        f"rent {money(ref.usd_per_gpu_hour)}/GPU-h, {d:.0%}/yr fall\nowning overtakes renting (present value): {over}",
        fontsize=10,
    )
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: _dollars(v)))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return fig


def _dollars(value: float) -> str:
    """An axis label: $1.5B, $250M, $45,800."""
    for scale, suffix in ((1e9, "B"), (1e6, "M")):
        if abs(value) >= scale:
            return f"${value / scale:,.4g}{suffix}"
    return f"${value:,.0f}"


def write_plots(report: CostReport, out_dir: Path) -> list[Path]:
    """Each GPU model's utilisation, tornado and cumulative-cost plots into `out_dir`, as PNG and SVG."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for gc in report.gpus.values():
        stem = "cost-" + re.sub(r"[^A-Za-z0-9._-]", "_", gc.gpu)
        for suffix, make in (
            ("utilisation", utilisation_plot),
            ("tornado", tornado_plot),
            ("cumulative", cumulative_plot),
        ):
            fig = make(report.catalog, gc)
            if fig is not None:
                written += _save(fig, out_dir, f"{stem}-{suffix}")
    return written
