"""The report's headline: what ran where, how many records, the best figures and the warnings, in one line.

Each best figure is the highest of its family's key figure over records with status ok, and keeps its
record's marks (`!` noisy, `~` contended, `^` client-limited), so a best figure from a noisy record says so.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from bench.report import columns as marks
from bench.report.serve import per_gpu
from bench.results.identity import device_label
from bench.text import cell, headline_figure
from bench.text import plural as count

SHOWN = 48  # characters of a hostname or a label shown in the headline

# (family, workload or None for any, the record's figure, its unit in the headline)
BEST = [
    ("gemm", None, "tflops", "TFLOP/s"),
    ("attention", None, "tflops", "TFLOP/s"),
    ("memory", None, "gb_per_s", "GB/s"),
    ("collective", None, "busbw_gb_per_s", "GB/s busbw"),
    ("llm", "decode", "output_tokens_per_s", "output tok/s"),
    ("llm", "prefill", "tokens_per_s", "tok/s"),
    ("llm", "train", "tokens_per_s", "tok/s"),
]


def _value(record: dict[str, Any], key: str) -> float | None:
    value = per_gpu(record) if key == "per_gpu" else record.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return None
    return float(value)


def _device(record: dict[str, Any]) -> tuple[Any, str]:
    """One device: a GPU by its label; a node's CPU once, however many ranks shared it."""
    if record.get("device_kind") == "cpu":
        return record.get("hostname"), str(record.get("device_name") or "cpu")
    return record.get("hostname"), device_label(record)


def machines(records: list[dict[str, Any]]) -> str:
    """ "node-a (2x NVIDIA H100 80GB HBM3)", or "3 nodes (a, b, c): 16x H100 ..." for several."""
    nodes = sorted({cell(r.get("hostname"), SHOWN) for r in records})
    devices = {_device(r) for r in records}
    one_each = {_device(r): r for r in records}.values()
    names = Counter(str(r.get("device_name") or r.get("device") or "?") for r in one_each)
    kinds = ", ".join(f"{n}x {cell(name, SHOWN)}" if n > 1 else cell(name, SHOWN) for name, n in sorted(names.items()))
    if len(nodes) == 1:
        return f"{nodes[0]} ({kinds})"
    shown = ", ".join(nodes[:3]) + (", ..." if len(nodes) > 3 else "")
    return f"{len(nodes)} nodes ({shown}; {count(len(devices), 'device')}: {kinds})"


def best_figures(records: list[dict[str, Any]]) -> list[str]:
    """The best figure of each family present: "gemm 610.8 TFLOP/s (8192x8192x8192 bf16)"."""
    ok = [r for r in records if r.get("status") == "ok"]
    out = []
    for family, workload, key, unit in BEST:
        rows = [(v, r) for r in ok if r.get("family") == family and (workload is None or r.get("workload") == workload)
                and (v := _value(r, key)) is not None]  # fmt: skip
        if rows:
            value, rec = max(rows, key=lambda pair: pair[0])
            name = workload or cell(rec.get("workload"), SHOWN)
            out.append(f"{name} {headline_figure(value)}{marks.marks_of(rec)} {unit} ({cell(rec.get('label'), SHOWN)})")
    serve = [r for r in ok if r.get("family") == "serve" and _value(r, "per_gpu") is not None]
    met = [r for r in serve if r.get("slo_met")] or serve
    if met:
        rec = max(met, key=lambda r: _value(r, "per_gpu") or 0.0)
        within = " within the SLO" if rec.get("slo_met") else ""
        out.append(f"serve {headline_figure(_value(rec, 'per_gpu') or 0.0)}{marks.marks_of(rec)} output tok/s per GPU"
                   f"{within} ({cell(rec.get('label'), SHOWN)})")  # fmt: skip
    return out


def warnings(runs_state: list[str], records: list[dict[str, Any]]) -> list[str]:
    """What a reader must know before trusting the figures, as short counts."""
    out = []
    statuses = Counter(str(r.get("status")) for r in records)
    if statuses.get("failed"):
        out.append(f"{count(statuses['failed'], 'record')} failed")
    for test, what in ((marks.is_noisy, f"noisy (CV {marks.NOISY_MARK})"),
                       (marks.is_contended, f"on a busy host ({marks.CONTENDED_MARK})"),
                       (marks.is_client_limited, f"client-limited ({marks.CLIENT_MARK})")):  # fmt: skip
        n = sum(1 for r in records if test(r))
        if n:
            out.append(f"{count(n, 'record')} {what}")
    missed = sum(1 for r in records if r.get("family") == "serve" and r.get("slo_met") is False)
    if missed:
        out.append(f"{count(missed, 'load point')} missed the SLO")
    unfinished = sum(1 for s in runs_state if s != "complete")
    if unfinished:
        out.append(f"{count(unfinished, 'run')} not complete")
    return out


def headline(runs_state: list[str], records: list[dict[str, Any]]) -> str:
    """The one line that opens the report."""
    if not records:
        return f"{count(len(runs_state), 'run')} with no records"
    statuses = Counter(str(r.get("status")) for r in records)
    split = ", ".join(f"{statuses[s]} {s}" for s in ("ok", "skipped", "failed") if statuses.get(s))
    text = f"{count(len(records), 'record')} ({split}) from {count(len(runs_state), 'run')} on {machines(records)}"
    best = best_figures(records)
    if best:
        text += "; best: " + ", ".join(best)
    warn = warnings(runs_state, records)
    text += "; warnings: " + ", ".join(warn) if warn else "; no warnings"
    return text
