"""`tokenbench cost`: $ per million tokens, owned against rented. Never imports torch."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from bench.cli.console import err, fail, out


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


class Term(str, Enum):
    on_demand = "on-demand"
    one_year = "1-year"
    three_year = "3-year"


def cost_(
    results: Annotated[
        list[Path] | None,
        typer.Argument(
            help="results: .jsonl files, run headers or directories (searched recursively)", show_default=False
        ),
    ] = None,
    catalog: Annotated[
        list[Path] | None,
        typer.Option("--catalog", help="your [[gpu]], [[offer]], [[server]] file; same id replaces; repeatable"),
    ] = None,
    site: Annotated[
        list[Path] | None,
        typer.Option("--site", help="your site figures (pue = 1.2, ...) and [sensitivity]; repeatable"),
    ] = None,
    fmt: Annotated[
        Format, typer.Option("--format", help="table, csv (the $/Mtok rows) or json (everything)")
    ] = Format.table,
    gpu: Annotated[
        str | None,
        typer.Option(help="catalog GPU id (e.g. H100-SXM): the GPU of --tokens-per-s, or a filter on results"),
    ] = None,
    tokens_per_s: Annotated[
        float | None, typer.Option(min=0, help="price this rate (tokens/s per GPU) instead of results")
    ] = None,
    usd_per_gpu_hour: Annotated[
        float | None, typer.Option(min=0, help="also price under this rental price ($/GPU-hour)")
    ] = None,
    term: Annotated[Term, typer.Option(help="term of --usd-per-gpu-hour")] = Term.on_demand,
    power_w: Annotated[
        float | None,
        typer.Option(min=0, help="with --tokens-per-s: measured mean power (default: TDP, an estimate)"),
    ] = None,
    idle_power_w: Annotated[float | None, typer.Option(min=0, help="with --tokens-per-s: measured idle power")] = None,
    utilisation: Annotated[float | None, typer.Option(min=0, max=1, help="replace the site utilisation (0-1]")] = None,
    plots: Annotated[Path | None, typer.Option(help="write PNG and SVG plots to this directory")] = None,
    train_params: Annotated[
        float | None, typer.Option(min=0, help="training projection: parameters (e.g. 8e9)")
    ] = None,
    train_tokens: Annotated[float | None, typer.Option(min=0, help="training projection: tokens (e.g. 15e12)")] = None,
    train_gpus: Annotated[int | None, typer.Option(min=1, help="training projection: GPUs")] = None,
    mfu: Annotated[
        float | None,
        typer.Option(min=0, max=1, help="training projection: MFU (default: the best measured)"),
    ] = None,
) -> None:
    """$ per million tokens, owned against rented, with break-even, sensitivity and a training-run projection."""
    _check_flags(locals())
    from bench.cost import pricing as costmod
    from bench.cost import subjects

    cat = _catalog(catalog, site, utilisation)
    if gpu is not None and gpu not in cat.gpus:
        fail(f"--gpu: unknown GPU {gpu!r}; known: {', '.join(sorted(cat.gpus))}")
    if results:
        priced, skipped = _subjects_from_results(results, gpu, cat)
    elif tokens_per_s is not None:
        if gpu is None:
            fail("--tokens-per-s needs --gpu (a catalog GPU id)")
        power = subjects.power_for(cat.gpus[gpu], power_w, idle_power_w, how="given")
        priced, skipped = [subjects.Subject(gpu=gpu, label="given rate", bases=(("tokens", tokens_per_s),),
                                             power=power)], []  # fmt: skip
    else:
        fail("nothing to price: give results (files or directories), or --gpu and --tokens-per-s")
    if not priced:
        reasons = "; ".join(sorted({s["reason"] for s in skipped}))
        fail(f"no record could be priced: {reasons}")
    extra = [costmod.given_offer(gpu, usd_per_gpu_hour, term.value)] if usd_per_gpu_hour and gpu else []
    report = costmod.analyse(cat, priced, skipped, extra)
    if train_params is not None and train_tokens is not None and train_gpus is not None:
        for gc in report.gpus.values():
            try:
                gc.projection = costmod.projection_for(cat, gc, priced, train_params, train_tokens, train_gpus, mfu)
            except ValueError as e:
                err.print(f"tokenbench: warning: {e}", markup=False, highlight=False, soft_wrap=True)
    _emit(report, fmt, plots)


def _check_flags(f: dict[str, Any]) -> None:
    """Refuse flags that are out of range or that go only with others, in one line each."""
    positive = ("tokens_per_s", "usd_per_gpu_hour", "power_w", "idle_power_w", "utilisation", "train_params",
                "train_tokens", "mfu")  # fmt: skip
    for name in positive:
        if f[name] is not None and f[name] <= 0:
            fail(f"--{name.replace('_', '-')} must be positive, got {f[name]:g}")
    given_power = f["power_w"] is not None or f["idle_power_w"] is not None
    rules = [
        ((f["train_params"] is None) != (f["train_tokens"] is None), "--train-params and --train-tokens go together"),
        (f["train_params"] is not None and f["train_gpus"] is None,
         "--train-gpus is needed with --train-params and --train-tokens"),
        (f["train_params"] is None and (f["train_gpus"] is not None or f["mfu"] is not None),
         "--train-gpus and --mfu go with --train-params and --train-tokens"),
        (f["term"] is not Term.on_demand and f["usd_per_gpu_hour"] is None, "--term goes with --usd-per-gpu-hour"),
        (f["usd_per_gpu_hour"] is not None and f["gpu"] is None,
         "--usd-per-gpu-hour needs --gpu (the GPU the price is for)"),
        (bool(f["results"]) and f["tokens_per_s"] is not None, "give results or --tokens-per-s, not both"),
        (not f["results"] and given_power and f["tokens_per_s"] is None,
         "--power-w and --idle-power-w go with --tokens-per-s"),
        (bool(f["results"]) and given_power,
         "--power-w and --idle-power-w go with --tokens-per-s; results carry their measured power"),
    ]  # fmt: skip
    for broken, message in rules:
        if broken:
            fail(message)


def _catalog(catalog: list[Path] | None, site: list[Path] | None, utilisation: float | None) -> Any:
    from bench.catalog import prices

    try:
        cat = prices.load(catalog or [], site or [])
        if utilisation is not None:
            cat = prices.with_site_value(cat, "utilisation", utilisation, "command line (--utilisation)")
    except prices.CatalogError as e:
        fail(str(e))
    return cat


def _subjects_from_results(results: list[Path], gpu: str | None, cat: Any) -> tuple[list[Any], list[dict[str, Any]]]:
    """What to price from results files: each record's token rates, or why a record cannot be priced."""
    from bench.catalog.match import record_gpu
    from bench.cost import subjects
    from bench.results.reader import ResultsError, load_records

    try:
        records = load_records(*results)
    except ResultsError as e:
        fail(str(e))
    if not records:
        fail(f"no records found in {', '.join(map(str, results))}")
    if gpu is not None:
        records = [r for r in records if record_gpu(r, cat) == gpu]
        if not records:
            fail(f"--gpu {gpu}: no records from that GPU")
    return subjects.subjects_from_records(records, cat)


def _emit(report: Any, fmt: Format, plots: Path | None) -> None:
    """The cost report as a table, CSV or JSON on stdout; plots written where asked."""
    from bench.cost import report as cost_report

    if fmt is Format.csv:
        sys.stdout.write(cost_report.frame(report).to_csv(index=False))
    elif fmt is Format.json:
        sys.stdout.write(json.dumps(cost_report.as_json(report), indent=2, default=str) + "\n")
    else:
        for renderable in cost_report.render(report):
            out.print(renderable)
        for line in cost_report.notes(report):
            out.print(line, markup=False, highlight=False, soft_wrap=True)
    if plots is not None:
        from bench.cost.plots import write_plots

        try:
            written = write_plots(report, plots)
        except OSError as e:
            fail(f"--plots {plots}: {e.strerror or e}")
        err.print(f"tokenbench: plots: {', '.join(str(p) for p in written)}", markup=False, soft_wrap=True)
