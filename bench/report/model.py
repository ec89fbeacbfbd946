"""The results report: one table per workload family across runs, nodes and GPUs (data, not layout).

Rows are records (node, GPU, run, configuration); columns are the figures that matter for the
family. A figure column that no row has (energy on a CPU, $/Mtok for a device with no price) is
left out rather than shown empty. $/Mtok comes from bench.cost.pricing at the catalog's site figures: the
owned GPU and the cheapest offer per useful GPU-hour, on the token kind the workload produces. Each
record is priced as itself (its own cost subject), never looked up by run id and seq, which the
ranks of one run share.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from bench.catalog.prices import Catalog
from bench.compare import node
from bench.cost import pricing as costmod
from bench.cost.subjects import Subject, not_priced, subject_of
from bench.report import columns as marks
from bench.report.columns import Col
from bench.report.headline import headline
from bench.report.serve import SERVE_COLUMNS, serve_order, serve_row
from bench.results.identity import device_label
from bench.results.reader import Run
from bench.results.schema import INT_FIELDS
from bench.text import Grid, cell, csv_safe, duration, integer, number, offer_name, percent, usd_compact

FAMILY_ORDER = ("gemm", "memory", "attention", "collective", "llm", "serve")
FAMILY_TITLES = {"gemm": "GEMM", "memory": "memory bandwidth", "attention": "attention",
                 "collective": "collectives (nccl-tests definitions)", "llm": "LLM workloads",
                 "serve": "serving load points (vLLM's metric definitions)"}  # fmt: skip
PRICED_KIND = {"decode": "output", "prefill": "input", "train": "trained", "serve": "output"}


IDENTITY = [
    Col("hostname", "node", cell, False),
    Col("gpu", "device", cell, False),
    Col("run_id", "run", cell, False),
    Col("workload", "workload", cell, False),
    Col("label", "config", cell, False),
    Col("status", "status", cell, False),
]
TIMING = [
    Col("time_median_s", "median", duration, mark=marks.contended),
    Col("time_cv", "CV", percent, mark=marks.noisy),
    Col("n_samples", "n", integer),
]
POWER = [Col("power_mean_w", "W")]
FIGURES: dict[str, list[Col]] = {
    "gemm": [*TIMING, Col("tflops", "TFLOP/s"), Col("frac_peak_flops", "% peak", percent), *POWER,
             Col("energy_per_tflop_j", "J/TFLOP")],
    "memory": [*TIMING, Col("gb_per_s", "GB/s"), Col("frac_peak_bw", "% peak", percent), *POWER,
               Col("energy_per_call_j", "J/call")],
    "attention": [*TIMING, Col("tflops", "TFLOP/s"), Col("gb_per_s", "GB/s"), Col("frac_peak_flops", "% peak", percent),
                  *POWER, Col("energy_per_tflop_j", "J/TFLOP")],
    "collective": [*TIMING, Col("world_size", "ranks"), Col("size_bytes", "size (bytes)", integer),
                   Col("algbw_gb_per_s", "algbw GB/s"), Col("busbw_gb_per_s", "busbw GB/s"),
                   Col("wrong_values", "#wrong", integer)],
    "llm": [*TIMING, Col("rate_tokens_per_s", "tokens/s", lambda x: number(x, 5)),
            Col("job_tokens_per_s", "job tokens/s", lambda x: number(x, 5)), Col("mfu", "MFU", percent),
            Col("mbu", "MBU", percent),
            Col("ttft_median_s", "TTFT", duration), Col("tpot_median_s", "TPOT", duration),
            Col("per_user_tokens_per_s", "tok/s/user"), *POWER, Col("energy_per_token_j", "J/token"),
            Col("usd_per_mtok_owned", "$/Mtok owned", usd_compact),
            Col("usd_per_mtok_rented", "$/Mtok rented", usd_compact),
            Col("rented_offer", "cheapest offer", cell, False)],
    "serve": SERVE_COLUMNS,
}  # fmt: skip
OTHER = [*TIMING, Col("tflops", "TFLOP/s"), Col("gb_per_s", "GB/s"), Col("tokens_per_s", "tokens/s"), *POWER]


@dataclass
class FamilyTable:
    """One workload family's table: its columns (the identity, then the figures some row has) and rows."""

    family: str
    title: str
    columns: list[Col]
    rows: list[dict[str, Any]]

    def grid(self) -> Grid:
        """The table as display strings, for the terminal and Markdown."""
        grid = Grid(self.title, [c.header for c in self.columns], right={c.header for c in self.columns if c.numeric})
        for row in self.rows:
            grid.add(*(c.show(row) for c in self.columns))
        return grid


@dataclass
class Report:
    """The runs read, their records, a table per family, the cost analysis (None: nothing priced) and notes."""

    runs: list[Run]
    records: list[dict[str, Any]]
    tables: list[FamilyTable]
    cost: costmod.CostReport | None
    notes: list[str] = field(default_factory=list)
    headline: str = ""


def _record_prices(cost: costmod.CostReport | None, subject: Subject | None) -> dict[str, Any]:
    """One record's owned $/Mtok and cheapest rented $/Mtok (and its offer), on the workload's own token kind."""
    if cost is None or subject is None or subject.gpu not in cost.gpus:
        return {}  # not priceable, or no owned price and no offer for its GPU
    out: dict[str, Any] = {}
    for row in cost.rows_of(subject):
        if row["tokens"] != PRICED_KIND.get(str(row["workload"])):
            continue
        if row["scenario"] == "owned":
            out["usd_per_mtok_owned"] = row["usd_per_mtok"]
        elif row["usd_per_mtok"] < out.get("usd_per_mtok_rented", float("inf")):
            out["usd_per_mtok_rented"] = row["usd_per_mtok"]
            out["rented_offer"] = f"{offer_name(row['provider'], row['term'])} ({row.get('price_date')})"
    return out


def _row(record: dict[str, Any], prices: dict[str, Any]) -> dict[str, Any]:
    rate = record.get("output_tokens_per_s") or record.get("tokens_per_s")
    extra = serve_row(record) if record.get("family") == "serve" else {}
    return {**record, "gpu": device_label(record), "rate_tokens_per_s": rate, **extra, **prices}


def _suite_order(rows: list[dict[str, Any]]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """Rows by workload, then each configuration where the suite first ran it (so 32 KiB, 8 MiB, 2 GiB
    keep the suite's order, not the alphabet's), then node, GPU and run."""
    first: dict[tuple[str, str], int] = {}
    for r in rows:
        key = (str(r["workload"]), str(r.get("label")))
        seq = r.get("seq")
        at = seq if isinstance(seq, int) else 1 << 30
        first[key] = min(first.get(key, at), at)

    def order(r: dict[str, Any]) -> tuple[Any, ...]:
        wl, label = str(r["workload"]), str(r.get("label"))
        return wl, first[(wl, label)], label, str(r.get("hostname")), r["gpu"], str(r.get("run_id"))

    return order


def family_tables(records: list[dict[str, Any]], prices: list[dict[str, Any]]) -> list[FamilyTable]:
    """One table per workload family, in FAMILY_ORDER; `prices[i]` holds the $/Mtok figures of `records[i]`."""
    all_rows = [_row(r, p) for r, p in zip(records, prices, strict=True)]
    families = sorted({str(r.get("family") or "other") for r in records},
                      key=lambda f: (FAMILY_ORDER.index(f) if f in FAMILY_ORDER else len(FAMILY_ORDER), f))  # fmt: skip
    tables = []
    for fam in families:
        rows = [r for r in all_rows if str(r.get("family") or "other") == fam]
        rows.sort(key=serve_order if fam == "serve" else _suite_order(rows))
        figures = [c for c in FIGURES.get(fam, OTHER) if any(r.get(c.key) is not None for r in rows)]
        tables.append(FamilyTable(fam, FAMILY_TITLES.get(fam, fam), [*IDENTITY, *figures], rows))
    return tables


def price(
    records: list[dict[str, Any]], cat: Catalog
) -> tuple[costmod.CostReport | None, list[Subject | None], list[str]]:
    """The cost analysis of every priceable record, each record's subject (None: not priced), and one
    note per reason LLM records are not priced."""
    found = [subject_of(r, cat) for r in records]
    subjects = [s for s, _ in found if s is not None]
    skipped = [not_priced(r.get("run_id"), r.get("seq"), r.get("workload"), str(why))
               for r, (s, why) in zip(records, found, strict=True) if s is None]  # fmt: skip
    report = costmod.analyse(cat, subjects, skipped) if subjects else None
    skipped = report.skipped if report else skipped
    llm_reasons = sorted({s["reason"] for s in skipped if s.get("workload") in PRICED_KIND})
    return report, [s for s, _ in found], [f"$/Mtok not shown for some LLM records: {why}" for why in llm_reasons]


def priced_subject(cost: costmod.CostReport, gpu: str) -> tuple[Subject, str] | None:
    """The record each GPU's bars are for: its fastest serve load point that met its SLO (any load point when none
    did), else its fastest decode (output tokens), else prefill, else training."""
    for workload in ("serve", "decode", "prefill", "train"):
        kind = PRICED_KIND[workload]
        rates = [(s, dict(s.bases)[kind]) for s in cost.subjects
                 if s.gpu == gpu and s.workload == workload and kind in dict(s.bases)]  # fmt: skip
        if workload == "serve":
            rates = [(s, r) for s, r in rates if getattr(s, "slo_met", None) is not False] or rates
        if rates:
            return max(rates, key=lambda pair: pair[1])[0], kind  # the first of the fastest, as listed
    return None


def shown_rows(cost: costmod.CostReport, gpu: str) -> list[dict[str, Any]]:
    """The $/Mtok rows shown for a GPU: one per scenario for its priced_subject's record, on its token kind."""
    pick = priced_subject(cost, gpu)
    if pick is None:
        return []
    subject, kind = pick
    return [r for r in cost.rows_of(subject) if r["tokens"] == kind]


def build(runs: list[Run], cat: Catalog) -> Report:
    """The report of these runs: a table per family with $/Mtok where a record can be priced, and the notes."""
    records = [r for run in runs for r in run.records]
    cost, subjects, notes = price(records, cat)
    tables = family_tables(records, [_record_prices(cost, s) for s in subjects])
    line = headline([run.state for run in runs], records)
    return Report(runs, records, tables, cost, notes + _notes(runs, records, tables, cost), line)


def _notes(
    runs: list[Run], records: list[dict[str, Any]], tables: list[FamilyTable], cost: costmod.CostReport | None
) -> list[str]:
    """Lines under the tables: why records failed or were skipped, what is not shown, which runs are unfinished."""
    notes = []
    reasons: dict[str, int] = {}
    for r in records:
        if r.get("reason"):
            where = f"{r.get('hostname')} {device_label(r)} {r['workload']} {r.get('label', '')}"
            why = f"{r['status']}: {where}: {r['reason']}"
            reasons[why] = reasons.get(why, 0) + 1
    notes += [why + (f" ({n} records)" if n > 1 else "") for why, n in reasons.items()]
    shown = {c.key for t in tables for c in t.columns}
    kernels = [r for r in records if r.get("family") in FAMILY_ORDER[:5]]  # the families a peak applies to
    if any(r["status"] == "ok" for r in kernels) and not shown & {"frac_peak_flops", "frac_peak_bw", "mfu", "mbu"}:
        notes.append("% peak, MFU and MBU are not shown: no device in these results has a vendor peak in the catalog")
    notes += marks.legend(records)
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
    return notes


def runs_grid(report: Report) -> Grid:
    """One row per run: where and when it ran, how it ended, and its records by status."""
    grid = Grid("runs", ["run", "node", "device", "suite", "state", "started", "ok", "skipped", "failed", "torch",
                         "driver"], right={"ok", "skipped", "failed"})  # fmt: skip
    for run in report.runs:
        h, recs = run.header or {}, run.records
        first = recs[0] if recs else {}
        counts = [sum(r["status"] == s for r in recs) for s in ("ok", "skipped", "failed")]
        grid.add(first.get("run_id") or h.get("run_id") or run.path.stem, first.get("hostname"), device_label(first),
                 h.get("suite"), run.state, h.get("started_at"), *counts, first.get("torch_version"),
                 first.get("driver_version"))  # fmt: skip
    return grid


def frame(report: Report) -> pd.DataFrame:
    """Every table's rows in one long frame of raw values (the CSV): family, then the columns shown."""
    rows = []
    for t in report.tables:
        for r in t.rows:
            rows.append({"family": csv_safe(t.family), **{c.key: csv_safe(r.get(c.key)) for c in t.columns}})
    df = pd.DataFrame(rows)
    for key in set(INT_FIELDS) & set(df.columns):  # counts stay integers (9, not 9.0) beside empty cells
        if all(row.get(key) is None or isinstance(row.get(key), int) for row in rows):
            df[key] = df[key].astype("Int64")
    return df
