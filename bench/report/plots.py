"""The report's plots: interactivity, roofline, $/Mtok per offer and energy per token, as SVG.

A plot that has nothing to draw is a `Plot` with no image and the reason, so the report says
why it is missing instead of drawing an empty frame. Labels come from results files: they are
made plain text and their `$` escaped, so matplotlib never reads them as mathtext.
"""

from __future__ import annotations

import io
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt

from bench.cost.pricing import CostReport
from bench.report.model import shown_rows
from bench.results.identity import device_label
from bench.text import plain


@dataclass(frozen=True)
class Plot:
    """One plot of the page: an SVG, or no image and the reason there is none."""

    key: str
    title: str
    caption: str
    svg: bytes | None  # None: nothing to draw, see reason
    reason: str | None = None


def label(value: Any, limit: int = 60) -> str:
    """A legend or tick label: plain text, `$` escaped, cut in the middle so the start and end both show."""
    text = plain(value)
    if len(text) > limit:
        head = (limit - 1) * 2 // 3
        text = text[:head] + "…" + text[len(text) - (limit - 1 - head) :]
    return text.replace("$", r"\$")


def positive(value: Any) -> float | None:
    """A finite positive number, else None: a results file's parameter can be a string or a bool."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and value > 0 else None


def _svg(fig: plt.Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return buf.getvalue()


def _ok(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["status"] == "ok"]


def interactivity(records: list[dict[str, Any]]) -> Plot:
    """Decode throughput against batch size, and against what one user sees (tokens/s per user)."""
    title = "Throughput against batch size (the interactivity curve)"
    caption = ("decode: output tokens/s of the whole batch against the batch size (left) and against tokens/s "
               "per user, 1 / median TPOT (right); each line is one node, GPU and model shape")  # fmt: skip
    series: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in _ok(records):
        if r["workload"] == "decode" and positive(r.get("param_batch")) and positive(r.get("output_tokens_per_s")):
            run = str(r.get("run_id") or "")[-6:]  # the same GPU measured twice is two curves
            key = (f"{r.get('hostname')} {device_label(r)} {r.get('model_preset')} "
                   f"pp{r.get('param_prompt_len')}+tg{r.get('param_new_tokens')} run ..{run}")  # fmt: skip
            series[key].append(r)
    if not series:
        return Plot("interactivity", title, caption, None, "no decode records measured")
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for key, rows in sorted(series.items()):
        rows.sort(key=lambda r: r["param_batch"])
        batch = [r["param_batch"] for r in rows]
        tput = [r["output_tokens_per_s"] for r in rows]
        (line,) = left.plot(batch, tput, marker="o", label=label(key))
        user = [r.get("per_user_tokens_per_s") for r in rows]
        pts = [(u, t, b) for u, t, b in zip(user, tput, batch, strict=True) if positive(u)]
        if pts:
            right.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color=line.get_color())
            for u, t, b in pts:
                right.annotate(label(f"b{b:g}", 12), (u, t), textcoords="offset points", xytext=(4, 4), fontsize=8)
    left.set_xscale("log", base=2)
    left.set(xlabel="batch size", ylabel="output tokens/s", title="throughput against batch")
    right.set(xlabel="tokens/s per user (1 / TPOT)", ylabel="output tokens/s", title="throughput against interactivity")
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
    left.legend(fontsize=7, loc="best")
    return Plot("interactivity", title, caption, _svg(fig))


def roofline(records: list[dict[str, Any]]) -> Plot:
    """Achieved TFLOP/s against arithmetic intensity, under each device's vendor roofs where known."""
    title = "Achieved against peak (roofline)"
    caption = (
        "each measured record at its arithmetic intensity (analytic FLOPs / analytic bytes); lines: the vendor "
        "roof min(peak FLOP/s, intensity x peak bandwidth) of each device and dtype in the catalog"
    )
    pts = [
        r for r in _ok(records) if positive(r.get("flops")) and positive(r.get("bytes")) and positive(r.get("tflops"))
    ]
    if not pts:
        return Plot("roofline", title, caption, None, "no record with analytic FLOPs and bytes")
    fig, ax = plt.subplots(figsize=(8, 5))
    roofs = {(r.get("peak_gpu_id"), r["peak_tflops"], r["peak_gb_per_s"]) for r in pts
             if positive(r.get("peak_tflops")) and positive(r.get("peak_gb_per_s"))}  # fmt: skip
    intensities = [r["flops"] / r["bytes"] for r in pts]
    lo, hi = min(intensities) / 4, max(intensities) * 4
    for gpu, peak_tflops, peak_gbs in sorted(roofs, key=str):
        knee = peak_tflops * 1e3 / peak_gbs  # FLOP/byte where the bandwidth roof meets the compute roof
        xs = [min(lo, knee / 4), knee, max(hi, knee * 4)]
        ax.plot(xs, [min(peak_tflops, x * peak_gbs / 1e3) for x in xs], linestyle="--", linewidth=1,
                label=f"roof {label(gpu)} {peak_tflops:g} TFLOP/s, {peak_gbs:g} GB/s")  # fmt: skip
    by_family: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in pts:
        by_family[str(r.get("family"))].append(r)
    for fam, rows in sorted(by_family.items()):
        ax.scatter([r["flops"] / r["bytes"] for r in rows], [r["tflops"] for r in rows], label=label(fam), zorder=3)
    ax.set(xscale="log", yscale="log", xlabel="arithmetic intensity (FLOP/byte)", ylabel="achieved TFLOP/s")
    if not roofs:
        ax.set_title("no vendor peak known for these devices: points only", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return Plot("roofline", title, caption, _svg(fig))


def cost_per_offer(cost: CostReport | None) -> Plot:
    """$/Mtok of each GPU model's priced record (shown_rows), owned and under each offer, as bars."""
    title = "$ per million tokens, owned and each rental offer"
    caption = ("for each GPU model, its fastest decode record (else prefill, else training): $ per useful GPU-hour "
               "/ tokens per hour, owned at the catalog's site figures and under each dated offer")  # fmt: skip
    if cost is None or not cost.rows:
        return Plot("cost", title, caption, None, "no record could be priced (a catalog GPU with an LLM token rate)")
    gpus = sorted(cost.gpus)
    bars = max(len(g.offers) + 1 for g in cost.gpus.values())
    fig, axes = plt.subplots(len(gpus), 1, figsize=(8, 1.2 + 0.32 * bars * len(gpus)), squeeze=False)
    for ax, gpu in zip(axes[:, 0], gpus, strict=True):
        rows = shown_rows(cost, gpu)
        rows.sort(key=lambda r: r["usd_per_mtok"], reverse=True)
        names = [label(f"{r['provider']} {r['term']}") for r in rows]
        values = [r["usd_per_mtok"] for r in rows]
        colors = ["#d62728" if r["scenario"] == "owned" else "#1f77b4" for r in rows]
        ax.barh(range(len(rows)), values, color=colors)
        ax.set_yticks(range(len(rows)), names, fontsize=8)
        for y, v in enumerate(values):
            ax.annotate(f"${v:.3g}", (v, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
        first = rows[0] if rows else {}
        ax.set_title(label(f"{gpu}: {first.get('label', '')}, {first.get('tokens', '')} tokens"), fontsize=10)
        ax.set_xlabel("$ per million tokens")
        ax.grid(True, axis="x", alpha=0.3)
    return Plot("cost", title, caption, _svg(fig))


def energy_per_token(records: list[dict[str, Any]]) -> Plot:
    """Joules per token of every LLM record that measured energy, as bars."""
    title = "Energy per token"
    caption = "LLM records: window energy / tokens counted by the workload (decode: output tokens, with their prefill)"
    rows = [r for r in _ok(records) if r.get("family") == "llm" and positive(r.get("energy_per_token_j"))]
    if not rows:
        return Plot("energy", title, caption, None,
                    "no LLM record measured energy (no NVML on the device and no readable RAPL counter)")  # fmt: skip
    rows.sort(key=lambda r: r["energy_per_token_j"])
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.3 * len(rows)))
    names = [label(f"{r.get('hostname')} {device_label(r)} {r['workload']} {r.get('label', '')}", 70) for r in rows]
    ax.barh(range(len(rows)), [r["energy_per_token_j"] for r in rows], color="#2ca02c")
    ax.set_yticks(range(len(rows)), names, fontsize=8)
    ax.set(xlabel="joules per token", xscale="log")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    return Plot("energy", title, caption, _svg(fig))


def _safe(key: str, title: str, draw: Callable[[], Plot]) -> Plot:
    """A plot that fails to draw (odd values from another machine) costs the page that plot, not the report."""
    try:
        return draw()
    except Exception as e:
        plt.close("all")
        return Plot(key, title, "", None, f"could not be drawn: {type(e).__name__}: {plain(e)[:200]}")


def all_plots(records: list[dict[str, Any]], cost: CostReport | None) -> list[Plot]:
    """Every plot of the page, in order; one that fails to draw is replaced by its reason."""
    return [
        _safe("interactivity", "Throughput against batch size", lambda: interactivity(records)),
        _safe("roofline", "Achieved against peak (roofline)", lambda: roofline(records)),
        _safe("cost", "$ per million tokens", lambda: cost_per_offer(cost)),
        _safe("energy", "Energy per token", lambda: energy_per_token(records)),
    ]
