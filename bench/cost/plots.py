"""`tokenbench cost --plots DIR`: $/Mtok owned against rented across utilisation, and the tornado.

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
from bench.cost.pricing import CostReport, GpuCost, owned_for
from bench.cost.report import PARAMETER_TEXT

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
            usd_per_mtok(rented_usd_per_useful_hour(offer.usd_per_gpu_hour, offer.committed, u), tps)
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
    base = gc.owned.usd_per_useful_hour(u) / rented_usd_per_useful_hour(ref.usd_per_gpu_hour, ref.committed, u)
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


def write_plots(report: CostReport, out_dir: Path) -> list[Path]:
    """Each GPU model's utilisation and tornado plots into `out_dir`, as PNG and SVG; the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for gc in report.gpus.values():
        stem = "cost-" + re.sub(r"[^A-Za-z0-9._-]", "_", gc.gpu)
        for suffix, make in (("utilisation", utilisation_plot), ("tornado", tornado_plot)):
            fig = make(report.catalog, gc)
            if fig is not None:
                written += _save(fig, out_dir, f"{stem}-{suffix}")
    return written
