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

from bench.cost.plots import money, plain_log_axis
from bench.cost.pricing import CostReport
from bench.report.columns import client_limited, is_noisy
from bench.report.model import shown_rows
from bench.report.serve import load_short, per_gpu
from bench.results.identity import device_label
from bench.text import offer_name, plain


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


def _error_bars(rows: list[dict[str, Any]], values: list[float]) -> list[list[float]] | None:
    """p5-p95 of a rate (work / time): the rate at the p95 time below, at the p5 time above; None when no row has
    both percentiles. A rate scales as median time / time, so rate x median / p95 is its p5."""
    lo, hi, any_ = [], [], False
    for r, v in zip(rows, values, strict=True):
        med, p5, p95 = positive(r.get("time_median_s")), positive(r.get("time_p5_s")), positive(r.get("time_p95_s"))
        if med and p5 and p95:
            lo.append(max(0.0, v - v * med / p95))
            hi.append(max(0.0, v * med / p5 - v))
            any_ = True
        else:
            lo.append(0.0)
            hi.append(0.0)
    return [lo, hi] if any_ else None


def _curve(ax: Any, xs: list[float], ys: list[float], rows: list[dict[str, Any]], name: str | None,
           color: str | None = None) -> tuple[str, bool]:  # fmt: skip
    """Points joined in order: solid between two trusted points, dashed where either has a CV above its
    threshold (`unstable`); returns the colour and whether a dashed segment was drawn."""
    (pts,) = ax.plot(xs, ys, marker="o", linestyle="none", label=name, color=color, zorder=3)
    colour = pts.get_color()
    dashed = False
    for i in range(len(xs) - 1):
        shaky = is_noisy(rows[i]) or is_noisy(rows[i + 1])
        dashed |= shaky
        ax.plot(xs[i : i + 2], ys[i : i + 2], linestyle="--" if shaky else "-", color=colour, alpha=0.6 if shaky else 1)
    return colour, dashed


def _say_dashed(ax: Any) -> None:
    ax.plot([], [], linestyle="--", color="grey", label="dashed: a point's CV is above its threshold (!)")


def interactivity(records: list[dict[str, Any]]) -> Plot:
    """Decode throughput against batch size, and against what one user sees (tokens/s per user)."""
    title = "Throughput against batch size (the interactivity curve)"
    caption = ("decode: output tokens/s of the whole batch against the batch size (left) and against tokens/s "
               "per user, 1 / median TPOT (right); each line is one node, GPU and model shape; bars: p5-p95 of the "
               "timed calls; a dashed segment joins a point whose CV is above the suite's threshold")  # fmt: skip
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
    dashed = False
    for key, rows in sorted(series.items()):
        rows.sort(key=lambda r: r["param_batch"])
        batch = [float(r["param_batch"]) for r in rows]
        tput = [float(r["output_tokens_per_s"]) for r in rows]
        colour, shaky = _curve(left, batch, tput, rows, label(key))
        dashed |= shaky
        bars = _error_bars(rows, tput)
        if bars:
            left.errorbar(batch, tput, yerr=bars, fmt="none", ecolor=colour, capsize=3, linewidth=1)
        pts = [(u, t, r) for t, r in zip(tput, rows, strict=True)
               if (u := positive(r.get("per_user_tokens_per_s"))) is not None]  # fmt: skip
        if pts:
            _curve(right, [p[0] for p in pts], [p[1] for p in pts], [p[2] for p in pts], None, colour)
            for u, t, r in pts:
                right.annotate(label(f"batch {r['param_batch']:g}", 16), (u, t), textcoords="offset points",
                               xytext=(4, 4), fontsize=8)  # fmt: skip
    left.set_xscale("log", base=2)
    plain_log_axis(left.xaxis, base=2)
    left.set(xlabel="batch size", ylabel="output tokens/s", title="throughput against batch")
    right.set(xlabel="tokens/s per user (1 / TPOT)", ylabel="output tokens/s", title="throughput against interactivity")
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
    if dashed:
        _say_dashed(left)
    left.legend(fontsize=7, loc="best")
    return Plot("interactivity", title, caption, _svg(fig))


def serving(records: list[dict[str, Any]]) -> Plot:
    """Serve load points: output tokens/s per GPU against tokens/s per user, one line per run and server."""
    title = "Serving: throughput per GPU against interactivity"
    caption = ("tokenbench serve load points (InferenceX's chart): output tokens/s per GPU against tokens/s per user "
               "(1 / median TPOT), one line per run, server model and device; up and right is better; hollow "
               "points missed the SLO; ^ marks a load point the client, not the server, limited")  # fmt: skip
    series: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in _ok(records):
        if r.get("family") == "serve" and positive(r.get("per_user_tokens_per_s")) and positive(per_gpu(r)):
            run = str(r.get("run_id") or "")[-6:]
            series[f"{r.get('param_server_model')} on {r.get('hostname')} {device_label(r)} run ..{run}"].append(r)
    if not series:
        return Plot("serving", title, caption, None, "no serve load point with tokens/s per user and per GPU")
    fig, ax = plt.subplots(figsize=(8, 5))
    dashed = False
    for key, rows in sorted(series.items()):
        rows.sort(key=lambda r: float(r["per_user_tokens_per_s"]))
        xs = [float(r["per_user_tokens_per_s"]) for r in rows]
        ys = [float(per_gpu(r) or 0.0) for r in rows]
        colour, shaky = _curve(ax, xs, ys, rows, label(key))
        dashed |= shaky
        for x, y, r in zip(xs, ys, rows, strict=True):
            if r.get("slo_met") is False:
                ax.plot([x], [y], marker="o", markersize=9, markerfacecolor="white", color=colour, zorder=4)
            ax.annotate(label(load_short(r) + client_limited(r), 16), (x, y), textcoords="offset points",
                        xytext=(4, 4), fontsize=8)  # fmt: skip
    if dashed:
        _say_dashed(ax)
    ax.set(xlabel="tokens/s per user (1 / median TPOT)", ylabel="output tokens/s per GPU")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return Plot("serving", title, caption, _svg(fig))


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
    for name, (x, y) in _point_labels(pts).items():
        ax.annotate(label(name, 40), (x, y), textcoords="offset points", xytext=(5, -3), fontsize=7)
    ax.set(xscale="log", yscale="log", xlabel="arithmetic intensity (FLOP/byte)", ylabel="achieved TFLOP/s")
    plain_log_axis(ax.xaxis)
    plain_log_axis(ax.yaxis)
    if not roofs:
        ax.set_title("no vendor peak known for these devices: points only", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return Plot("roofline", title, caption, _svg(fig))


def _point_labels(pts: list[dict[str, Any]]) -> dict[str, tuple[float, float]]:
    """One label per configuration ("gemm 8192x8192x8192 bf16"), at its best point: several GPUs that measured
    the same configuration share one label instead of printing it over itself."""
    best: dict[str, tuple[float, float]] = {}
    for r in pts:
        name = f"{r['workload']} {r.get('label', '')}".strip()
        x, y = r["flops"] / r["bytes"], r["tflops"]
        if name not in best or y > best[name][1]:
            best[name] = (x, y)
    return best


def cost_per_offer(cost: CostReport | None) -> Plot:
    """$/Mtok of each GPU model's priced record (shown_rows), owned and under each offer, as bars."""
    title = "$ per million tokens, owned and each rental offer"
    caption = ("for each GPU model, its fastest serve load point within its SLO (else its fastest decode record, "
               "else prefill, else training): $ per useful GPU-hour / tokens per hour, owned at the catalog's site "
               "figures and under each dated offer")  # fmt: skip
    if cost is None or not cost.rows:
        return Plot("cost", title, caption, None, "no record could be priced (a catalog GPU with an LLM token rate)")
    gpus = [g for g in sorted(cost.gpus) if shown_rows(cost, g)]
    if not gpus:
        return Plot("cost", title, caption, None, "no priced record has a $/Mtok row on its own token kind")
    bars = max(len(g.offers) + 1 for g in cost.gpus.values())
    fig, axes = plt.subplots(len(gpus), 1, figsize=(8, 1.2 + 0.32 * bars * len(gpus)), squeeze=False,
                             layout="constrained")  # fmt: skip
    for ax, gpu in zip(axes[:, 0], gpus, strict=True):
        rows = shown_rows(cost, gpu)
        rows.sort(key=lambda r: r["usd_per_mtok"], reverse=True)
        names = [label(offer_name(r["provider"], r["term"])) for r in rows]
        values = [r["usd_per_mtok"] for r in rows]
        colors = ["#d62728" if r["scenario"] == "owned" else "#1f77b4" for r in rows]
        ax.barh(range(len(rows)), values, color=colors)
        ax.set_yticks(range(len(rows)), names, fontsize=8)
        for y, v in enumerate(values):
            ax.annotate(money(v), (v, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
        first = rows[0] if rows else {}
        ax.set_title(label(f"{gpu}: {first.get('label', '')}, {first.get('tokens', '')} tokens"), fontsize=10)
        ax.set_xlabel("$ per million tokens")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _pos: money(v)))
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
    plain_log_axis(ax.xaxis)
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
        _safe("serving", "Serving: throughput per GPU against interactivity", lambda: serving(records)),
        _safe("roofline", "Achieved against peak (roofline)", lambda: roofline(records)),
        _safe("cost", "$ per million tokens", lambda: cost_per_offer(cost)),
        _safe("energy", "Energy per token", lambda: energy_per_token(records)),
    ]
