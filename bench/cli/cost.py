"""`tokenbench cost`: $ per million tokens, owned against rented. Never imports torch."""

from __future__ import annotations

import math
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from bench.cli.console import err, fail, line, out, warn


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
            metavar="RESULTS",
            help="results: .jsonl files, run headers or directories (searched recursively)",
            show_default=False,
        ),
    ] = None,
    catalog: Annotated[
        list[Path] | None,
        typer.Option(
            "--catalog", metavar="FILE", help="your [[gpu]], [[offer]], [[server]] file; same id replaces; repeatable"
        ),
    ] = None,
    site: Annotated[
        list[Path] | None,
        typer.Option("--site", metavar="FILE", help="your site figures (pue = 1.2, ...) and [sensitivity]; repeatable"),
    ] = None,
    fmt: Annotated[
        Format, typer.Option("--format", help="table, csv (the $/Mtok rows) or json (everything)")
    ] = Format.table,
    gpu: Annotated[
        str | None,
        typer.Option(
            help="catalog GPU id (e.g. H100-SXM): the GPU of --tokens-per-s or of a training projection, "
            "or a filter on results (and the server's GPU for serve records whose client ran elsewhere)"
        ),
    ] = None,
    tokens_per_s: Annotated[
        float | None, typer.Option(help="price this rate (tokens/s per GPU) instead of results")
    ] = None,
    usd_per_gpu_hour: Annotated[
        float | None, typer.Option(help="also price under this rental price ($/GPU-hour)")
    ] = None,
    term: Annotated[Term, typer.Option(help="term of --usd-per-gpu-hour")] = Term.on_demand,
    power_w: Annotated[
        float | None,
        typer.Option(help="with --tokens-per-s: measured mean power (default: TDP, an estimate)"),
    ] = None,
    idle_power_w: Annotated[float | None, typer.Option(help="with --tokens-per-s: measured idle power")] = None,
    utilisation: Annotated[float | None, typer.Option(help="replace the site utilisation (0-1]")] = None,
    plots: Annotated[Path | None, typer.Option(help="write PNG and SVG plots to this directory")] = None,
    train_params: Annotated[float | None, typer.Option(help="training projection: parameters (e.g. 8e9)")] = None,
    train_tokens: Annotated[float | None, typer.Option(help="training projection: tokens (e.g. 15e12)")] = None,
    train_gpus: Annotated[int | None, typer.Option(min=1, help="training projection: GPUs")] = None,
    mfu: Annotated[
        float | None,
        typer.Option(
            help="training projection: MFU (default: the best measured); with --gpu and no results, "
            "the rate it implies is priced"
        ),
    ] = None,
    profile: Annotated[
        str | None, typer.Option(help="owner profile: enterprise (the default), neocloud or hyperscaler")
    ] = None,
    life_years: Annotated[float | None, typer.Option(help="useful life in years (0-15]; replaces depreciation")] = None,
    residual_share: Annotated[
        float | None, typer.Option(help="resale value at the end of the life, share of the capital [0, 1)")
    ] = None,
    rent_decline: Annotated[
        float | None, typer.Option(help="yearly fall of rents over the life (0.2 = 20%; negative: a rise)")
    ] = None,
    resale_price: Annotated[
        float | None, typer.Option(help="$/GPU-hour received for idle hours resold, after costs")
    ] = None,
    resale_fill: Annotated[float | None, typer.Option(help="share of idle hours resold [0, 1]")] = None,
    fleet_mw: Annotated[
        float | None, typer.Option(help="fleet: facility power in MW (GPUs, $ and tokens a year)")
    ] = None,
    contract_usd: Annotated[float | None, typer.Option(help="a rental contract's value in $: the GPUs it buys")] = None,
    contract_years: Annotated[float | None, typer.Option(help="the contract's term in years")] = None,
) -> None:
    """$ per million tokens, owned against rented: break-even, sensitivity, the life year by year, a fleet."""
    _check_flags(locals())
    _check_life_flags(locals())
    from bench.cost import pricing as costmod
    from bench.cost import subjects

    given = {"utilisation": utilisation, "depreciation_years": life_years, "residual_share": residual_share,
             "rent_decline": rent_decline, "resale_usd_per_gpu_hour": resale_price,
             "resale_fill": resale_fill}  # fmt: skip
    cat = _catalog(catalog, site, profile, given)
    if gpu is not None and gpu not in cat.gpus:
        from bench.catalog.gpus import unknown_gpu

        fail(f"--gpu: {unknown_gpu(gpu, cat.gpus)}")
    if results:
        priced, skipped = _subjects_from_results(results, gpu, cat)
    elif tokens_per_s is not None:
        if gpu is None:
            fail("--tokens-per-s needs --gpu (a catalog GPU id)")
        power = subjects.power_for(cat.gpus[gpu], power_w, idle_power_w, how="given")
        priced, skipped = [subjects.Subject(gpu=gpu, label="given rate", bases=(("tokens", tokens_per_s),),
                                             power=power)], []  # fmt: skip
    elif gpu is not None and train_params is not None:
        priced, skipped = [_training_subject(cat, gpu, train_params, mfu, power_w, idle_power_w)], []
    else:
        fail("nothing to price: give results (files or directories), --gpu and --tokens-per-s, "
             "or --gpu with a training projection (--train-params, --train-tokens, --train-gpus, --mfu)")  # fmt: skip
    if not priced:
        fail(f"nothing to price: {subjects.skipped_summary(skipped)}")
    extra = [costmod.given_offer(gpu, usd_per_gpu_hour, term.value)] if usd_per_gpu_hour and gpu else []
    report = costmod.analyse(cat, priced, skipped, extra)
    if not report.subjects:
        fail(f"nothing to price: {subjects.skipped_summary(report.skipped)}")
    if train_params is not None and train_tokens is not None and train_gpus is not None:
        _project(cat, report, priced, (train_params, train_tokens, train_gpus), mfu)
    _fleet_and_contract(report, fleet_mw, contract_usd, contract_years, usd_per_gpu_hour)
    over_life = any(x is not None for x in (profile, life_years, residual_share, rent_decline, resale_price, fleet_mw))
    _emit(report, fmt, plots, over_life)


def _training_subject(cat: Any, gpu: str, params: float, mfu: float | None, power_w: float | None,
                      idle_power_w: float | None) -> Any:  # fmt: skip
    """A training projection with nothing measured to price: the rate --mfu implies on the catalog peak."""
    from bench.catalog import gpus
    from bench.cost import projection, subjects

    if mfu is None:
        fail(f"training projection for {gpu}: no measured MFU: give results with a training record "
             "(tokenbench run -w train:...), or --mfu")  # fmt: skip
    peak = gpus.peak_flops(cat.gpus[gpu], "bf16")
    if peak is None:
        fail(f"training projection for {gpu}: the catalog has no bf16 peak for it")
    rate = projection.training_tokens_per_s(mfu, peak, params)
    power = subjects.power_for(cat.gpus[gpu], power_w, idle_power_w, how="given")
    label = f"training at MFU {mfu:g} (--mfu) x {peak / 1e12:g} TFLOP/s bf16 peak / 6N"
    return subjects.Subject(gpu=gpu, label=label, bases=(("trained", rate),), power=power, workload="train")


def _project(cat: Any, report: Any, priced: list[Any], run: tuple[float, float, int], mfu: float | None) -> None:
    """The training projection on each GPU model priced: a one-line error when none could be made, a
    warning for each GPU model that could not where others could."""
    from bench.cost import pricing

    problems = []
    for gc in report.gpus.values():
        try:
            gc.projection = pricing.projection_for(cat, gc, priced, *run, mfu)
        except ValueError as e:
            problems.append(str(e))
    if problems and all(gc.projection is None for gc in report.gpus.values()):
        fail("; ".join(problems))
    for problem in problems:
        warn(problem)


def _check_flags(f: dict[str, Any]) -> None:
    """Refuse flags that are out of range or that go only with others, in one line each."""
    for name, value in f.items():
        if isinstance(value, float) and not math.isfinite(value):
            fail(f"--{name.replace('_', '-')} must be a finite number, got {value}")
    positive = ("tokens_per_s", "usd_per_gpu_hour", "power_w", "idle_power_w", "utilisation", "train_params",
                "train_tokens", "mfu")  # fmt: skip
    for name in positive:
        if f[name] is not None and f[name] <= 0:
            fail(f"--{name.replace('_', '-')} must be positive, got {f[name]:g}")
    for name in ("utilisation", "mfu"):
        if f[name] is not None and f[name] > 1:
            fail(f"--{name} must be in (0, 1], got {f[name]:g}")
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
        (not f["results"] and given_power and f["tokens_per_s"] is None and f["train_params"] is None,
         "--power-w and --idle-power-w go with --tokens-per-s or a training projection"),
        (bool(f["results"]) and given_power,
         "--power-w and --idle-power-w go with --tokens-per-s; results carry their measured power"),
    ]  # fmt: skip
    for broken, message in rules:
        if broken:
            fail(message)


def _check_life_flags(f: dict[str, Any]) -> None:
    """The options over the life and at fleet scale: ranges, and those that go only with others."""

    def bad(name: str, ok: bool, expected: str) -> tuple[bool, str]:
        given = f[name] is not None
        return given and not ok, f"--{name.replace('_', '-')} must be {expected}, got {f[name]:g}" if given else ""

    def value(name: str) -> float:
        return f[name] if f[name] is not None else 0.0

    rules = [
        bad("life_years", 0 < value("life_years") <= 15, "in (0, 15] years"),
        bad("residual_share", 0 <= value("residual_share") < 1, "in [0, 1): a share of the capital"),
        bad("rent_decline", -1 < value("rent_decline") < 1,
            "in (-1, 1): a yearly fall (0.2 = 20%), negative for a rise"),
        bad("resale_price", value("resale_price") >= 0, "a price of 0 or more ($/GPU-hour)"),
        bad("resale_fill", 0 <= value("resale_fill") <= 1, "in [0, 1]: a share of the idle hours"),
        bad("fleet_mw", value("fleet_mw") > 0, "positive (facility MW)"),
        bad("contract_usd", value("contract_usd") > 0, "positive"),
        bad("contract_years", value("contract_years") > 0, "positive"),
        ((f["resale_price"] is None) != (f["resale_fill"] is None),
         "--resale-price and --resale-fill go together (the price of resold hours and the share of idle hours sold)"),
        ((f["contract_usd"] is None) != (f["contract_years"] is None),
         "--contract-usd and --contract-years go together"),
        (f["contract_usd"] is not None and f["usd_per_gpu_hour"] is None,
         "--contract-usd needs --usd-per-gpu-hour (the rate the contract buys GPU-hours at) and --gpu"),
    ]  # fmt: skip
    for broken, message in rules:
        if broken:
            fail(message)


def _catalog(catalog: list[Path] | None, site: list[Path] | None, profile: str | None, given: dict[str, Any]) -> Any:
    """The catalog: packaged, the profile, the user's files, then each site figure given on the command line."""
    from bench.catalog import prices
    from bench.catalog.profiles import profile_names

    if profile is not None and profile not in profile_names():
        import difflib

        near = difflib.get_close_matches(profile, profile_names(), n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        fail(f"--profile: unknown profile {profile!r}; known: {', '.join(profile_names())}{hint}")
    flags = {"depreciation_years": "life-years", "resale_usd_per_gpu_hour": "resale-price"}
    try:
        cat = prices.load(catalog or [], site or [], profile)
        for name, value in given.items():
            if value is not None:
                flag = flags.get(name, name.replace("_", "-"))
                cat = prices.with_site_value(cat, name, value, f"command line (--{flag})")
    except prices.CatalogError as e:
        fail(str(e))
    for problem in prices.future_dated(cat):
        warn(problem)
    return cat


def _fleet_and_contract(report: Any, fleet_mw: float | None, usd: float | None, years: float | None,
                        rate: float | None) -> None:  # fmt: skip
    """--fleet-mw on each GPU model priced; --contract-usd at the given rate."""
    from bench.cost import fleet, scenario

    for gc in report.gpus.values():
        if fleet_mw is None:
            break
        if gc.owned is None:
            fail(f"--fleet-mw: no provisioned kW per GPU for {gc.gpu} in the catalog; add a [[server]] with --catalog")
        tps = gc.focus.bases[0][1]
        gc.fleet = scenario.fleet_for(report.catalog, gc.gpu, gc.owned, gc.reference, tps, fleet_mw)
    if usd is not None and years is not None and rate is not None:
        report.contract = fleet.contract(usd, years, rate)


def _subjects_from_results(results: list[Path], gpu: str | None, cat: Any) -> tuple[list[Any], list[dict[str, Any]]]:
    """What to price from results files: each record's token rates, or why a record cannot be priced."""
    from bench.catalog.match import record_gpu
    from bench.cost import subjects
    from bench.results.reader import ResultsError, load_records

    try:
        records = load_records(*results, on_warning=warn)
    except ResultsError as e:
        fail(str(e))
    if not records:
        fail(f"no records found in {', '.join(map(str, results))}")
    if gpu is not None:  # a filter; a serve record run from a client off the GPU node is taken to be on it
        records = [r for r in records if record_gpu(r, cat) in (gpu, None if r.get("workload") == "serve" else gpu)]
        if not records:
            fail(f"--gpu {gpu}: no records from that GPU")
    return subjects.subjects_from_records(records, cat, serve_gpu=gpu)


def _emit(report: Any, fmt: Format, plots: Path | None, over_life: bool) -> None:
    """The cost report as a table, CSV or JSON on stdout; plots written where asked."""
    from bench.cost import export, report_life
    from bench.cost import report as cost_report

    if fmt is Format.csv:
        sys.stdout.write(export.csv_text(report))
    elif fmt is Format.json:
        sys.stdout.write(export.json_text(report))
    else:
        for text in report_life.headline(report):
            line(text)
        for renderable in cost_report.render(report, over_life):
            out.print(renderable)
        for note in cost_report.notes(report):
            line(note)
    if plots is not None:
        from bench.cost.plots import write_plots

        try:
            written = write_plots(report, plots)
        except OSError as e:
            fail(f"--plots {plots}: {e.strerror or e}")
        err.print(f"tokenbench: plots: {', '.join(str(p) for p in written)}", markup=False, soft_wrap=True)
