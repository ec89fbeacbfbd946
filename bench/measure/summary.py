"""What a run says about itself, as text and data: its title, its headline, its flags, its JSON summary.

Built from the records alone (no printing here); `tokenbench run` prints them. The headline names
what ran, counts the records by status, counts the flagged ones (`!` noisy: CV over the suite's
threshold; `contended`: the host's CPUs were shared, bench/measure/host.py), and gives the best
figure of each kind that ran.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.measure.predict import Prediction, duration
from bench.text import plural

# Built-in suites sized for a GPU: on the CPU they say so before they start.
GPU_SUITES = ("node", "accept-quick", "collectives")
# The figure the headline gives per workload: (record field, unit, how to print it)
KEY_FIGURES = {
    "gemm": ("tflops", "TFLOP/s", "{:.3g}"),
    "copy": ("gb_per_s", "GB/s", "{:.3g}"),
    "attention": ("tflops", "TFLOP/s", "{:.3g}"),
    "train": ("tokens_per_s", "tok/s", "{:,.0f}"),
    "prefill": ("tokens_per_s", "tok/s", "{:,.0f}"),
    "decode": ("output_tokens_per_s", "output tok/s", "{:,.0f}"),  # the tables' figure
    "all_reduce": ("busbw_gb_per_s", "GB/s busbw", "{:.3g}"),
    "all_gather": ("busbw_gb_per_s", "GB/s busbw", "{:.3g}"),
    "reduce_scatter": ("busbw_gb_per_s", "GB/s busbw", "{:.3g}"),
}


def what_ran(suite: str, workload_args: Sequence[str]) -> str:
    """'suite smoke', or 'gemm:m=32,... from suite smoke' where --workload chose."""
    return f"{', '.join(workload_args)} (suite {suite})" if workload_args else f"suite {suite}"


def title(suite: str, workload_args: Sequence[str], n_entries: int, where: str) -> str:
    """The run's opening line: what runs, where, how many entries."""
    return f"tokenbench run: {what_ran(suite, workload_args)} on {where}: {plural(n_entries, 'entry', 'entries')}"


def flag_counts(records: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Records that are ok but not to be trusted as they stand: noisy (CV), contended (busy host)."""
    ok = [r for r in records if r.get("status") == "ok"]
    return {
        "noisy": sum(bool(r.get("unstable")) for r in ok),
        "contended": sum(bool(r.get("contended")) for r in ok),
        "flagged": sum(bool(r.get("unstable") or r.get("contended")) for r in ok),
    }


def status_counts(records: Sequence[dict[str, Any]]) -> dict[str, int]:
    return {s: sum(r.get("status") == s for r in records) for s in ("ok", "skipped", "failed")}


def key_figures(records: Sequence[dict[str, Any]]) -> list[str]:
    """The best figure per workload among the ok records, e.g. 'gemm 0.11 TFLOP/s (512x512x512 fp32)',
    marked as the tables mark it: `!` noisy (CV over the threshold), `~` contended (a busy host)."""
    out = []
    for wid, (key, unit, fmt) in KEY_FIGURES.items():
        rows = [r for r in records if r.get("workload") == wid and r.get("status") == "ok" and r.get(key) is not None]
        if rows:
            best = max(rows, key=lambda r: float(r[key]))
            mark = ("!" if best.get("unstable") else "") + ("~" if best.get("contended") else "")
            mark = f" {mark}" if mark else ""
            out.append(f"{wid} {fmt.format(float(best[key]))} {unit} ({best.get('label')}){mark}")
    return out


def headline(records: Sequence[dict[str, Any]], what: str, where: str, state: str = "complete") -> str:
    """One line: what ran, the counts, the flags and the key figures (or why nothing measured)."""
    c, f = status_counts(records), flag_counts(records)
    counts = f"{c['ok']} ok, {c['skipped']} skipped, {c['failed']} failed"
    flags = f"; {f['flagged']} flagged ({f['noisy']} noisy, {f['contended']} contended)" if f["flagged"] else ""
    verdict = "FAILED" if c["failed"] else "interrupted" if state == "interrupted" else "done"
    figures = key_figures(records)
    best = f"; best: {', '.join(figures)}" if figures else "; nothing measured"
    return f"{verdict}: {what} on {where}: {plural(len(records), 'record')} ({counts}{flags}){best}"


def gpu_sized_warning(suite: str, device_kind: str, predictions: Sequence[Prediction | None]) -> str | None:
    """On the CPU, one line when the suite is sized for a GPU or predictions skip entries, else None."""
    if device_kind == "cuda":
        return None
    skipped = sum(1 for p in predictions if p is not None and p.skip_reason)
    if suite not in GPU_SUITES and not skipped:
        return None
    left = sum(p.entry_s for p in predictions if p is not None and not p.skip_reason)
    what = (f"suite {suite} is sized for a GPU and runs here on the CPU" if suite in GPU_SUITES
            else "on the CPU")  # fmt: skip
    rest = f"; the rest are predicted to take about {duration(left)}" if left > 0 else ""
    return (
        f"{what}: {skipped} of {plural(len(predictions), 'entry', 'entries')} predicted too long for "
        f"the timer will be skipped (reasons in the table){rest}"
    )


JSON_KEYS = ("seq", "workload", "label", "status", "reason", "time_median_s", "time_cv", "n_samples", "unstable",
             "contended", "contention_reason", "tflops", "gb_per_s", "tokens_per_s", "predicted_call_s")  # fmt: skip


def json_summary(records: Sequence[dict[str, Any]], **run: Any) -> dict[str, Any]:
    """The run as `tokenbench run --format json` prints it: `run` fields, counts, flags, a row per record."""
    return {
        **run,
        "counts": status_counts(records),
        "flags": flag_counts(records),
        "records": [{k: r.get(k) for k in JSON_KEYS} for r in records],
    }
