"""`tokenbench cost --plots DIR`: $/Mtok owned against rented across utilisation, the tornado, and the
cumulative cost owned against rented over the life.

Each plot is written as PNG and SVG. Reporting only: reads a `CostReport`, measures nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

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


def _save(fig: plt.Figure, out_dir: Path, stem: str) -> list[Path]:
    paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.svg"]
    for p in paths:
        fig.savefig(p, dpi=150 if p.suffix == ".png" else None, bbox_inches="tight", metadata=_metadata(p))
    plt.close(fig)
    return paths


def _metadata(path: Path) -> dict[str, str | None]:
    # No creation date in the files, so the same report gives the same bytes.
    return {"Software": None} if path.suffix == ".png" else {"Date": None, "Creator": None}


def utilisation_plot(cat: Catalog, gc: GpuCost) -> plt.Figure | None:
    """$/Mtok of the focus subject against utilisation: owned, and each offer."""
    kind, tps = gc.focus.bases[0]
    fig, ax = plt.subplots(figsize=(8, 5))
    owned = owned_for(cat, gc.gpu, gc.focus.power)
    if owned is not None:
        ax.plot(
            UTILISATION,
            [usd_per_mtok(owned.usd_per_useful_hour(u), tps) for u in UTILISATION],
            color="black",
            linewidth=2.5,
            label="owned",
        )
    for offer in gc.offers:
        y = [
            usd_per_mtok(rented_usd_per_useful_hour(offer.usd_per_gpu_hour * gc.rent_level, offer.committed, u), tps)
            for u in UTILISATION
        ]
        style = "--" if offer.committed else "-"
        ax.plot(
            UTILISATION,
            y,
            style,
            linewidth=1.2,
            label=f"{offer.provider} {offer.term} ${offer.usd_per_gpu_hour:g}/h{'*' if offer.weak else ''}",
        )
    if owned is None and not gc.offers:
        plt.close(fig)
        return None
    site_u = cat.value("utilisation")
    ax.axvline(site_u, color="grey", linestyle=":", linewidth=1)
    ax.annotate(
        f"site {site_u:.0%}",
        (site_u, 1),
        xycoords=("data", "axes fraction"),
        fontsize=8,
        ha="right",
        va="top",
        rotation=90,
        color="grey",
    )
    ax.set_yscale("log")
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.set_xlabel("utilisation (share of wall-clock hours doing useful work)")
    kind_text = "" if kind == "tokens" else f"{kind} "
    ax.set_ylabel(f"$ per million {kind_text}tokens")
    ax.set_title(
        f"{gc.gpu}: {gc.focus.label}, {tps:,.0f} {kind_text}tokens/s per GPU\n"
        "owned (black) against rented; committed terms dashed (paid every hour)",
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
        for value, ratio, colour in ((s.low, s.ratio_low, "tab:blue"), (s.high, s.ratio_high, "tab:orange")):
            ax.barh(i, ratio - base, left=base, color=colour, height=0.6)
            ax.annotate(
                f"{value:g}",
                (ratio, i),
                fontsize=8,
                va="center",
                ha="left" if ratio >= base else "right",
                xytext=(3 if ratio >= base else -3, 0),
                textcoords="offset points",
            )
    ax.set_yticks(range(len(rows)), [PARAMETER_TEXT[s.parameter] for s in rows])
    ax.axvline(base, color="black", linewidth=1)
    ax.axvline(1.0, color="red", linestyle="--", linewidth=1)
    ax.set_xlabel("owned / rented cost per token (below 1: owning is cheaper; red: break-even)")
    ax.set_title(
        f"{gc.gpu}: sensitivity against {ref.provider} {ref.term} ${ref.usd_per_gpu_hour:g}/GPU-h; "
        f"base {base:.2f}\nblue: the figure's low end, orange: its high end",
        fontsize=10,
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
        (f"rented ({ref.provider} {ref.term})", [r.rented_cumulative_usd for r in sched.rows], "tab:orange", "-"),
        ("owned, present value", [r.owned_pv_cumulative_usd for r in sched.rows], "black", ":"),
        ("rented, present value", [r.rented_pv_cumulative_usd for r in sched.rows], "tab:orange", ":"),
    )
    for label, values, colour, style in series:
        ax.plot(years, np.array(values) * n, style, color=colour, marker="o", linewidth=2, label=label)
    if sched.overtakes_year is not None:
        ax.axvline(sched.overtakes_year, color="grey", linestyle="--", linewidth=1)
    ax.set_xticks(years)
    ax.set_xlabel("year (capital paid in year 0; the residual value comes back in the last year)")
    scope = f"{n:,} GPUs" if n > 1 else "one GPU"
    ax.set_ylabel(f"cumulative $ ({scope})")
    d = cat.optional("rent_decline")
    over = "never" if sched.overtakes_year is None else f"year {sched.overtakes_year}"
    ax.set_title(
        f"{gc.gpu}: cumulative cost over {gc.owned.years:g} years at {cat.value('utilisation'):.0%} utilisation; "
        f"rent ${ref.usd_per_gpu_hour:g}/GPU-h, {d:.0%}/yr fall\nowning overtakes renting (present value): {over}",
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
