"""`tokenbench compare`: a candidate run against a baseline run or reference, with a verdict per configuration."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bench.cli.console import err, fail, line, out, warn
from bench.cli.results import CatalogOpt, _catalog, _runs
from bench.text import plain

if TYPE_CHECKING:
    from bench.results.reader import Run


class CompareFormat(str, Enum):
    table = "table"
    md = "md"
    json = "json"


class Missing(str, Enum):
    fail = "fail"
    warn = "warn"


def compare(
    results: Annotated[
        list[Path],
        typer.Argument(
            metavar="RUN",
            help="BASELINE CANDIDATE, or only CANDIDATE with --reference (files or directories)",
        ),
    ],
    reference: Annotated[
        bool, typer.Option("--reference", help="baseline: the reference results for the candidate's GPU model")
    ] = False,
    reference_dir: Annotated[
        Path | None, typer.Option(help="where the references are kept (default: results/reference of tokenbench)")
    ] = None,
    fmt: Annotated[CompareFormat, typer.Option("--format", help="table, md or json")] = CompareFormat.table,
    fail_pct: Annotated[float, typer.Option(help="FAIL when slower by more than this %, beyond the noise")] = 5.0,
    warn_pct: Annotated[float, typer.Option(help="WARN when significantly slower by more than this %")] = 2.0,
    confidence: Annotated[float, typer.Option(help="confidence level of the intervals, between 0 and 1")] = 0.95,
    missing: Annotated[
        Missing, typer.Option(help="a configuration the baseline has and the candidate lacks: fail or warn")
    ] = Missing.fail,
    allow_different_devices: Annotated[
        bool,
        typer.Option(
            "--allow-different-devices",
            help="compare records measured on different device models (GPU or CPU), or on the CPU with different "
            "torch thread counts; without it they are SKIP rows",
        ),
    ] = False,
    catalog: CatalogOpt = None,
) -> None:
    """Candidate against baseline: change in median with an interval, PASS / WARN / FAIL per GPU; exit 1 on FAIL.

    Exit 2 (its reason the first line) on bad input or when nothing could be compared."""
    from bench.compare import model as cmp
    from bench.compare import report as compare_report

    if not 0 < confidence < 1:
        fail(f"--confidence must be between 0 and 1, got {confidence:g}")
    if not 0 <= warn_pct <= fail_pct:
        fail(f"need 0 <= --warn-pct <= --fail-pct, got {warn_pct:g} and {fail_pct:g}")
    if reference and len(results) != 1:
        fail(f"--reference takes one CANDIDATE (the baseline is the reference), got {len(results)} paths")
    if not reference and len(results) != 2:
        fail(f"give BASELINE and CANDIDATE (or --reference CANDIDATE), got {len(results)} "
             f"{'path' if len(results) == 1 else 'paths'}")  # fmt: skip
    if reference_dir is not None and not reference:
        fail("--reference-dir goes with --reference")
    cand = _runs(results[-1:], "candidate")
    if not reference and {r.path.resolve() for r in _runs(results[:1], "baseline")} == {r.path.resolve() for r in cand}:
        fail(f"baseline and candidate are the same run(s) ({results[0]}): give two runs to compare")
    if reference:
        base, baseline_label = _reference_baseline(cand, reference_dir, catalog)
    else:
        base = _runs(results[:1], "baseline")
        baseline_label = f"baseline {results[0]}"
    th = cmp.Thresholds(fail=fail_pct / 100, warn=warn_pct / 100, confidence=confidence,
                        missing_fails=missing is Missing.fail,
                        allow_different_devices=allow_different_devices)  # fmt: skip
    try:
        result = cmp.compare(base, cand, th, baseline_label, f"candidate {results[-1]}")
    except Exception as e:  # a bug must not read as a FAIL (exit 1) to the CI gate
        fail(f"compare could not finish: {type(e).__name__}: {e}", code=3)
    if not result.compared:  # the reason first; the tables below show each configuration's
        err.print(f"tokenbench: error: {plain(result.nothing_compared())}", markup=False, highlight=False,
                  soft_wrap=True)  # fmt: skip
    if fmt is CompareFormat.json:
        sys.stdout.write(json.dumps(result.as_json(), indent=2) + "\n")
    elif fmt is CompareFormat.md:
        sys.stdout.write(compare_report.markdown(result))
    else:
        tables, compact = compare_report.tables(result, out.width)
        for table in tables:
            out.print(table)
        for text in compare_report.lines(result, compact=compact):
            line(text)
    raise typer.Exit(result.exit_code)


def _reference_baseline(
    cand: list[Run], reference_dir: Path | None, catalog: list[Path] | None
) -> tuple[list[Run], str]:
    """The reference runs for the candidate's GPU model, only that model's records, and their label."""
    from bench.catalog.match import record_gpu
    from bench.compare import reference as ref

    cat = _catalog(catalog, None)
    ref_dir = reference_dir or ref.DEFAULT_DIR
    try:
        gpu = ref.candidate_gpu([r for run in cand for r in run.records], cat)
        folder, prov = ref.find(ref_dir, gpu)
    except ref.ReferenceError as e:
        fail(str(e))
    base = _runs([folder], "reference")
    for run in base:  # a stray run of another model must not join the baseline
        kept = [r for r in run.records if record_gpu(r, cat) == gpu]
        if len(kept) < len(run.records):
            left = len(run.records) - len(kept)
            warn(
                f"{run.path}: {left} {'record' if left == 1 else 'records'} not from a {gpu} left out of the reference"
            )
        run.records = kept
    if not any(run.records for run in base):
        fail(f"{folder}: no record from a {gpu}")
    baseline_label = f"reference {prov.summary()}"
    line_to_err = f"tokenbench: baseline: {baseline_label} ({folder})"
    err.print(plain(line_to_err), markup=False, highlight=False, soft_wrap=True)  # provenance.toml is someone's text
    return base, baseline_label
