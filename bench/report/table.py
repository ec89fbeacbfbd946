"""The results table printed at the end of a run (reporting only: reads records, measures nothing)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.table import Table
from rich.text import Text

from bench.report.columns import CONTENDED_MARK, NOISY_MARK, is_contended, is_noisy, legend
from bench.results.identity import rank_label
from bench.text import Grid, duration, integer, number, percent, percent_or_na, token_rate


def peak_fraction_text(record: dict[str, Any]) -> str:
    """Fraction of the peak that bounds the workload: FLOP/s, else bandwidth; 'n/a' when unknown."""
    frac = record.get("frac_peak_flops")
    if frac is None and record.get("flops") is None:
        frac = record.get("frac_peak_bw")
    return percent_or_na(frac)


def _status(record: dict[str, Any]) -> str:
    status = record["status"]
    style = {"ok": "green", "skipped": "yellow", "failed": "bold red"}.get(status, "")
    return f"[{style}]{status}[/]"


def _cv(record: dict[str, Any]) -> str:
    text = percent(record.get("time_cv"))
    return f"[yellow]{text}{NOISY_MARK}[/]" if is_noisy(record) and text != "-" else text


def _median(record: dict[str, Any]) -> str:
    """The median, with `~` when the host was busy while it ran (contention slows every call alike)."""
    text = duration(record.get("time_median_s"))
    return f"[yellow]{text}{CONTENDED_MARK}[/]" if is_contended(record) and text != "-" else text


def _check(record: dict[str, Any]) -> str:
    passed = record.get("check_passed")
    return "-" if passed is None else ("[green]pass[/]" if passed else "[bold red]FAIL[/]")


def _has_energy(records: list[dict[str, Any]]) -> bool:
    return any(r.get("power_mean_w") is not None for r in records)


def _energy(record: dict[str, Any], key: str) -> str:
    """An energy figure; '?' marks a record whose counter and integrated power disagree."""
    text = number(record.get(key))
    return f"[yellow]{text}?[/]" if record.get("energy_disagrees") and text != "-" else text


def _ranked(records: list[dict[str, Any]]) -> bool:
    return any(r.get("rank") is not None for r in records)


def llm_table(records: Iterable[dict[str, Any]], title: str | None = None) -> Table:
    """LLM workloads in serving and training units: tokens/s, MFU/MBU, TTFT, TPOT, interactivity."""
    records = list(records)
    energy = _has_energy(records)
    ranked = _ranked(records)
    job = any(r.get("job_tokens_per_s") is not None for r in records)
    table = Table(title=title, title_justify="left", header_style="bold")
    columns = (
        *(("rank",) if ranked else ()),
        "workload",
        "config",
        "status",
        "median",
        "CV",
        "n",
        "tokens/s",
        *(("job tokens/s",) if job else ()),
        "MFU",
        "MBU",
        "TTFT",
        "TPOT",
        "tok/s/user",
        *(("W", "J/tok") if energy else ()),
        "check",
    )
    for name in columns:
        table.add_column(name, justify="left" if name in ("rank", "workload", "config", "status", "check") else "right",
                         no_wrap=True)  # fmt: skip
    for r in records:
        tokens_per_s = r.get("output_tokens_per_s") or r.get("tokens_per_s")
        table.add_row(
            *((rank_label(r),) if ranked else ()),
            r["workload"], r.get("label", ""), _status(r), _median(r), _cv(r), number(r.get("n_samples"), 6),
            token_rate(tokens_per_s), *((token_rate(r.get("job_tokens_per_s")),) if job else ()),
            percent_or_na(r.get("mfu")) if r["status"] == "ok" else "-",
            percent_or_na(r.get("mbu")) if "mbu" in r else "-", duration(r.get("ttft_median_s")),
            duration(r.get("tpot_median_s")), token_rate(r.get("per_user_tokens_per_s")),
            *((_energy(r, "power_mean_w"), _energy(r, "energy_per_token_j")) if energy else ()), _check(r),
        )  # fmt: skip
    return table


def collective_table(records: Iterable[dict[str, Any]], title: str | None = None) -> Table:
    """Collectives as nccl-tests shows them: size, time, algbw, busbw and wrong values, per rank (the rank
    column only where the records come from several processes)."""
    records = list(records)
    ranked = _ranked(records)
    table = Table(title=title, title_justify="left", header_style="bold")
    names = ("workload", "config", "status", "median", "CV", "n", "size", "algbw GB/s", "busbw GB/s", "#wrong", "check")
    for name in ("rank", *names) if ranked else names:
        left = name in ("rank", "workload", "config", "status", "check")
        table.add_column(name, justify="left" if left else "right", no_wrap=True)
    for r in records:
        table.add_row(
            *((rank_label(r),) if ranked else ()), r["workload"], r.get("label", ""), _status(r), _median(r), _cv(r),
            number(r.get("n_samples"), 6), integer(r.get("size_bytes")), number(r.get("algbw_gb_per_s")),
            number(r.get("busbw_gb_per_s")), number(r.get("wrong_values"), 6), _check(r),
        )  # fmt: skip
    return table


def results_tables(
    records: Iterable[dict[str, Any]], title: str | None = None, width: int | None = None
) -> list[Table]:
    """The kernel table, then the collectives and the LLM tables where there are such records; with a
    `width`, each made to fit it as `report` does (bench/report/terminal.py: no figure or header cut)."""
    records = list(records)
    groups = [
        (results_table, [r for r in records if r.get("family") not in ("llm", "collective")]),
        (collective_table, [r for r in records if r.get("family") == "collective"]),
        (llm_table, [r for r in records if r.get("family") == "llm"]),
    ]
    tables: list[Table] = []
    for make, rows in groups:
        if rows:
            tables.append(make(rows, None if tables else title))
    if width is None:
        return tables
    from bench.report.terminal import fit

    return [part for t in tables for part in fit(_grid(t), width)]


def _grid(table: Table) -> Grid:
    """A Rich table as a Grid of its plain text (right-justified columns are its figures)."""
    columns = [str(c.header) for c in table.columns]
    grid = Grid(str(table.title or ""), columns, right={str(c.header) for c in table.columns if c.justify == "right"})
    cells = [[x.plain if isinstance(x, Text) else Text.from_markup(str(x)).plain for x in c._cells]
             for c in table.columns]  # fmt: skip
    grid.rows = [list(row) for row in zip(*cells, strict=True)]
    return grid


def results_table(records: Iterable[dict[str, Any]], title: str | None = None) -> Table:
    """One row per record: what ran, how long it took, what that means against the peak."""
    records = list(records)
    energy = _has_energy(records)
    ranked = _ranked(records)
    table = Table(title=title, title_justify="left", header_style="bold")
    for name, justify in (
        *((("rank", "left"),) if ranked else ()),
        ("workload", "left"),
        ("config", "left"),
        ("status", "left"),
        ("median", "right"),
        ("CV", "right"),
        ("n", "right"),
        ("TFLOP/s", "right"),
        ("GB/s", "right"),
        ("% peak", "right"),
        *((("W", "right"), ("J/TFLOP", "right")) if energy else ()),
        ("check", "left"),
    ):
        table.add_column(name, justify=justify, no_wrap=True)
    for r in records:
        table.add_row(
            *((rank_label(r),) if ranked else ()),
            r["workload"],
            r.get("label", ""),
            _status(r),
            _median(r),
            _cv(r),
            number(r.get("n_samples"), 6),
            number(r.get("tflops")),
            number(r.get("gb_per_s")),
            peak_fraction_text(r),
            *((_energy(r, "power_mean_w"), _energy(r, "energy_per_tflop_j")) if energy else ()),
            _check(r),
        )
    return table


def _reason_lines(records: list[dict[str, Any]]) -> list[str]:
    """Why records were skipped or failed: one line per reason, naming its records (a CPU skips many
    entries of a GPU suite for the same reason; forty lines would bury the rest)."""
    groups: dict[tuple[str, str], list[str]] = {}
    for r in records:
        if r.get("reason"):
            groups.setdefault((str(r["status"]), str(r["reason"])), []).append(f"{r['workload']} {r.get('label', '')}")
    lines = []
    for (status, reason), names in groups.items():
        if len(names) == 1:
            lines.append(f"{status}: {names[0]}: {reason}")
        else:
            shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
            lines.append(f"{status} ({len(names)}): {shown}: {reason}")
    return lines


def notes(records: Iterable[dict[str, Any]]) -> list[str]:
    """Lines to print under the table: why records were skipped or failed, what '!' means."""
    records = list(records)
    lines = _reason_lines(records)
    lines += legend(records)
    if any(r.get("energy_disagrees") for r in records):
        lines.append("? the energy counter and integrated power disagree by over 10%: distrust that energy figure")
    if _has_energy(records):
        lines.append("W: mean power over the timed window; J/tok, J/TFLOP: window energy per unit of work")
    if any(r["status"] == "ok" and peak_fraction_text(r) == "n/a" for r in records):
        lines.append("% peak, MFU, MBU n/a: the device has no vendor peak in the catalog (always so on a CPU)")
    reduced = {(r["model_preset"], r["model_layers"], r["model_layers_full"]) for r in records
               if r.get("model_layers") and r["model_layers"] != r.get("model_layers_full")}  # fmt: skip
    for preset, layers, full in sorted(reduced):
        lines.append(f"{preset} ran with {layers} of its {full} layers: its figures are not the full model's")
    return lines
