"""The results report: one table per workload family across runs, nodes and GPUs (data, not layout).

Rows are records (node, GPU, run, configuration); columns are the figures that matter for the
family. A figure column that no row has (energy on a CPU, $/Mtok for a device with no price) is
left out rather than shown empty. $/Mtok comes from bench.cost.pricing at the catalog's site figures: the
owned GPU and the cheapest offer per useful GPU-hour, on the token kind the workload produces.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from bench.catalog.prices import Catalog
from bench.compare import node
from bench.cost import pricing as costmod
from bench.report.table import fmt_num, fmt_time
from bench.results.reader import Run
from bench.text import Grid, cell, csv_safe

FAMILY_ORDER = ("gemm", "memory", "attention", "collective", "llm")
FAMILY_TITLES = {"gemm": "GEMM", "memory": "memory bandwidth", "attention": "attention",
                 "collective": "collectives (nccl-tests definitions)", "llm": "LLM workloads"}  # fmt: skip
PRICED_KIND = {"decode": "output", "prefill": "input", "train": "trained"}


def _pct(x: Any) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _int(x: Any) -> str:
    return "-" if x is None else f"{x:,}"


def _usd(x: Any) -> str:
    return "-" if x is None else f"${x:.3g}" if x < 10 else f"${x:,.2f}"


@dataclass(frozen=True)
class Col:
    key: str
    header: str
    fmt: Callable[[Any], str] = fmt_num
    numeric: bool = True


IDENTITY = [
    Col("hostname", "node", cell, False),
    Col("gpu", "device", cell, False),
    Col("run_id", "run", cell, False),
    Col("workload", "workload", cell, False),
    Col("label", "config", cell, False),
    Col("status", "status", cell, False),
]
TIMING = [Col("time_median_s", "median", fmt_time), Col("time_cv", "CV", _pct)]
POWER = [Col("power_mean_w", "W")]
FIGURES: dict[str, list[Col]] = {
    "gemm": [*TIMING, Col("tflops", "TFLOP/s"), Col("frac_peak_flops", "% peak", _pct), *POWER,
             Col("energy_per_tflop_j", "J/TFLOP")],
    "memory": [*TIMING, Col("gb_per_s", "GB/s"), Col("frac_peak_bw", "% peak", _pct), *POWER,
               Col("energy_per_call_j", "J/call")],
    "attention": [*TIMING, Col("tflops", "TFLOP/s"), Col("gb_per_s", "GB/s"), Col("frac_peak_flops", "% peak", _pct),
                  *POWER, Col("energy_per_tflop_j", "J/TFLOP")],
    "collective": [*TIMING, Col("world_size", "ranks"), Col("size_bytes", "size (bytes)", _int),
                   Col("algbw_gb_per_s", "algbw GB/s"), Col("busbw_gb_per_s", "busbw GB/s"),
                   Col("wrong_values", "#wrong", _int)],
    "llm": [Col("rate_tokens_per_s", "tokens/s", lambda x: fmt_num(x, 5)),
            Col("job_tokens_per_s", "job tokens/s", lambda x: fmt_num(x, 5)), Col("mfu", "MFU", _pct),
            Col("mbu", "MBU", _pct),
            Col("ttft_median_s", "TTFT", fmt_time), Col("tpot_median_s", "TPOT", fmt_time),
            Col("per_user_tokens_per_s", "tok/s/user"), *POWER, Col("energy_per_token_j", "J/token"),
            Col("usd_per_mtok_owned", "$/Mtok owned", _usd), Col("usd_per_mtok_rented", "$/Mtok rented", _usd),
            Col("rented_offer", "cheapest offer", cell, False)],
}  # fmt: skip
OTHER = [*TIMING, Col("tflops", "TFLOP/s"), Col("gb_per_s", "GB/s"), Col("tokens_per_s", "tokens/s"), *POWER]


@dataclass
class FamilyTable:
    family: str
    title: str
    columns: list[Col]
    rows: list[dict[str, Any]]

    def grid(self) -> Grid:
        grid = Grid(self.title, [c.header for c in self.columns], right={c.header for c in self.columns if c.numeric})
        for row in self.rows:
            grid.add(*(c.fmt(row.get(c.key)) for c in self.columns))
        return grid


@dataclass
class Report:
    runs: list[Run]
    records: list[dict[str, Any]]
    tables: list[FamilyTable]
    cost: costmod.CostReport | None
    notes: list[str] = field(default_factory=list)


def gpu_name(record: dict[str, Any]) -> str:
    index, rank = record.get("gpu_index"), record.get("rank")
    where = f" #{index}" if index is not None else f" rank {rank}" if rank is not None else ""
    return f"{record.get('device_name') or record.get('device') or '?'}{where}"


def _prices(report: costmod.CostReport | None) -> dict[Any, dict[str, Any]]:
    """Record position -> owned $/Mtok and the cheapest rented $/Mtok, on the workload's own token kind."""
    out: dict[tuple[Any, Any], dict[str, Any]] = {}
    for row in report.rows if report else []:
        if row["tokens"] != PRICED_KIND.get(str(row["workload"])):
            continue
        slot = out.setdefault(row["seq"], {})
        if row["scenario"] == "owned":
            slot["usd_per_mtok_owned"] = row["usd_per_mtok"]
        elif row["usd_per_mtok"] < slot.get("usd_per_mtok_rented", float("inf")):
            slot["usd_per_mtok_rented"] = row["usd_per_mtok"]
            slot["rented_offer"] = f"{row['provider']} {row['term']} ({row.get('price_date')})"
    return out


def _row(record: dict[str, Any], priced: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    rate = record.get("output_tokens_per_s") or record.get("tokens_per_s")
    extra = priced.get(record["_pos"], {})
    return {**record, "gpu": gpu_name(record), "rate_tokens_per_s": rate, **extra}


def family_tables(records: list[dict[str, Any]], priced: dict[Any, dict[str, Any]]) -> list[FamilyTable]:
    families = sorted({str(r.get("family") or "other") for r in records},
                      key=lambda f: (FAMILY_ORDER.index(f) if f in FAMILY_ORDER else len(FAMILY_ORDER), f))  # fmt: skip
    tables = []
    for fam in families:
        rows = [_row(r, priced) for r in records if str(r.get("family") or "other") == fam]
        rows.sort(key=lambda r: (str(r["workload"]), str(r.get("label")), str(r.get("hostname")), r["gpu"],
                                 str(r.get("run_id"))))  # fmt: skip
        figures = [c for c in FIGURES.get(fam, OTHER) if any(r.get(c.key) is not None for r in rows)]
        tables.append(FamilyTable(fam, FAMILY_TITLES.get(fam, fam), [*IDENTITY, *figures], rows))
    return tables


def price(records: list[dict[str, Any]], cat: Catalog) -> tuple[costmod.CostReport | None, list[str]]:
    """The cost analysis of every priceable record, and one note per reason others are not priced."""
    subjects, skipped = costmod.subjects_from_records(records, cat)
    report = costmod.analyse(cat, subjects, skipped) if subjects else None
    skipped = report.skipped if report else skipped
    llm_reasons = sorted({s["reason"] for s in skipped if s.get("workload") in PRICED_KIND})
    return report, [f"$/Mtok not shown for some LLM records: {why}" for why in llm_reasons]


def priced_subject(cost: costmod.CostReport, gpu: str) -> tuple[Any, Any, str] | None:
    """The record each GPU's bars are for: its fastest decode (output tokens), else prefill, else training."""
    for workload in ("decode", "prefill", "train"):
        kind = PRICED_KIND[workload]
        rows = [r for r in cost.rows if r["gpu"] == gpu and r["workload"] == workload and r["tokens"] == kind]
        if rows:
            best = max(rows, key=lambda r: r["tokens_per_s"])
            return best["run_id"], best["seq"], kind
    return None


def build(runs: list[Run], cat: Catalog) -> Report:
    # Cost rows name their record by its position here (as "seq"): seq alone is unique only within a run.
    records = [{**r, "_pos": i} for i, r in enumerate(r for run in runs for r in run.records)]
    cost, notes = price([{**r, "seq": r["_pos"]} for r in records], cat)
    tables = family_tables(records, _prices(cost))
    reasons: dict[str, int] = {}
    for r in records:
        if r.get("reason"):
            where = f"{r.get('hostname')} {gpu_name(r)} {r['workload']} {r.get('label', '')}"
            why = f"{r['status']}: {where}: {r['reason']}"
            reasons[why] = reasons.get(why, 0) + 1
    notes += [why + (f" ({n} records)" if n > 1 else "") for why, n in reasons.items()]
    shown = {c.key for t in tables for c in t.columns}
    if any(r["status"] == "ok" for r in records) and not shown & {"frac_peak_flops", "frac_peak_bw", "mfu", "mbu"}:
        notes.append("% peak, MFU and MBU are not shown: no device in these results has a vendor peak in the catalog")
    if any(r.get("unstable") and r["status"] == "ok" for r in records):
        notes.append("CV above the suite's threshold on some records: their medians are not trustworthy")
    for run in runs:  # a run on several GPUs at once: each against its siblings
        threshold = ((run.header or {}).get("node_summary") or {}).get("outlier_threshold")
        summary = node.summarize(run.records, threshold if isinstance(threshold, (int, float)) else 0.05)
        notes += [f"run {run.records[0]['run_id']}: {line}" for line in summary.lines()[1:]] if summary.gpus else []
    for run in runs:
        if run.state != "complete":
            notes.append(f"run {run.records[0]['run_id'] if run.records else run.path.name} is {run.state}: "
                         "it may lack records")  # fmt: skip
    if cost:
        u = cost.catalog.value("utilisation")
        notes.append(
            f"$/Mtok at {100 * u:g}% utilisation and the catalog's site figures (see tokenbench cost), per million "
            "of the workload's own tokens: output for decode, input for prefill, trained for train"
        )
    return Report(runs, records, tables, cost, notes)


def runs_grid(report: Report) -> Grid:
    grid = Grid("runs", ["run", "node", "device", "suite", "state", "started", "ok", "skipped", "failed", "torch",
                         "driver"], right={"ok", "skipped", "failed"})  # fmt: skip
    for run in report.runs:
        h, recs = run.header or {}, run.records
        first = recs[0] if recs else {}
        counts = [sum(r["status"] == s for r in recs) for s in ("ok", "skipped", "failed")]
        grid.add(first.get("run_id") or h.get("run_id") or run.path.stem, first.get("hostname"), gpu_name(first),
                 h.get("suite"), run.state, h.get("started_at"), *counts, first.get("torch_version"),
                 first.get("driver_version"))  # fmt: skip
    return grid


def frame(report: Report) -> pd.DataFrame:
    """Every table's rows in one long frame of raw values (the CSV): family, then the columns shown."""
    rows = []
    for t in report.tables:
        for r in t.rows:
            rows.append({"family": csv_safe(t.family), **{c.key: csv_safe(r.get(c.key)) for c in t.columns}})
    return pd.DataFrame(rows)
