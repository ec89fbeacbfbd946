"""The `tokenbench` command: run, cost, report, compare, list, env."""

from __future__ import annotations

import json
import os
import secrets
import signal
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import torch
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import workloads
from bench.cli import results as cli_results
from bench.cli.console import err, fail, out
from bench.compare import node
from bench.device import telemetry as tm
from bench.device.base import Device, DeviceError, cuda_unusable_reason, detect
from bench.device.energy import idle_fields
from bench.device.rapl import HostEnergy
from bench.measure import provenance as envmod
from bench.measure import ranks as dist
from bench.measure.runner import Runner
from bench.measure.suites import Entry, SuiteError, builtin_names, load_suite, select
from bench.report.table import notes, results_tables
from bench.results.reader import ResultsError, load_records
from bench.results.writer import RunWriter, TimelineWriter, new_run_id

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="tokenbench: LLM and kernel benchmarks in tokens/s, TFLOP/s and GB/s, on GPU or CPU.",
)


def _open_device(requested: str | None) -> Device:
    try:
        return detect(requested)
    except DeviceError as e:
        fail(str(e))


def _entries(suite_name: str | None, workload_args: list[str], device: Device) -> tuple[str, list[Entry]]:
    name = suite_name or ("node" if device.kind == "cuda" else "smoke")
    try:
        suite = load_suite(name)
        return suite.name, select(suite, workload_args)
    except SuiteError as e:
        fail(str(e))


@app.command()
def run(
    suite: Annotated[
        str | None,
        typer.Option("--suite", "-s", help="suite name or .toml path; default: node on a GPU, smoke on the CPU"),
    ] = None,
    workload: Annotated[
        list[str] | None,
        typer.Option(
            "--workload",
            "-w",
            help="run only this workload id (its suite entries), or ID:key=value,... for one configuration; repeatable",
        ),
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="directory for <run-id>.jsonl and .json")] = Path(
        "results"
    ),
    device: Annotated[
        str | None, typer.Option(help="cpu, cuda or cuda:N; default: first usable GPU, else the CPU")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="seed for inputs; default: a fresh random one")] = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar on stderr")] = True,
    idle_s: Annotated[
        float,
        typer.Option(min=0, help="seconds of idle-power baseline before the first workload (0: none)"),
    ] = 5.0,
    sample_ms: Annotated[
        float, typer.Option(min=1, help="milliseconds between telemetry samples during each timed window")
    ] = tm.DEFAULT_INTERVAL_S * 1000,
    energy_window_s: Annotated[
        float,
        typer.Option(min=0, help="lengthen each timed window to at least this many seconds where NVML measures it"),
    ] = tm.DEFAULT_MIN_WINDOW_S,
    timeline: Annotated[bool, typer.Option(help="keep every telemetry sample in OUT/<run-id>.timeline.csv")] = False,
    nproc: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="processes on this node, one per GPU (or CPU processes with --device cpu), through torchrun; "
            "default: every visible GPU when no --device is given, else 1",
        ),
    ] = None,
    dist_timeout_s: Annotated[
        float, typer.Option(min=1, help="with several processes: how long a rank waits for the others")
    ] = 600.0,
    outlier_pct: Annotated[
        float, typer.Option(min=0, help="with several GPUs: name a GPU this many % under its node's median")
    ] = node.DEFAULT_OUTLIER_PCT,
) -> None:
    """Run a suite and print a results table; records go to OUT/<run-id>.jsonl as each one finishes."""
    # Validate the suite before touching the GPU when one is named, so bad input costs nothing.
    if suite:
        _entries(suite, workload or [], detect("cpu"))
    d = _join_or_launch(nproc, device, dist_timeout_s)
    dev = _open_device(_rank_device(device, d))
    for note in dev.notes if _is_lead(d) else []:
        err.print(f"tokenbench: warning: {note}", markup=False, highlight=False, soft_wrap=True)
    suite_name, entries = _entries(suite, workload or [], dev)
    if not entries:
        fail(f"nothing to run: suite {suite_name!r} selects no entries")
    seed = secrets.randbelow(2**31) if seed is None else seed
    if d:
        seed = d.broadcast(seed)  # every rank draws the same inputs where a collective's check needs it
    environment = envmod.capture(dev)
    telemetry = tm.for_device(dev, min_window_s=energy_window_s)
    host_energy = HostEnergy()
    if d is not None and dev.kind == "cpu" and d.local_world_size > 1:  # RAPL measures the whole package
        host_energy.zones = []
        host_energy.reason = f"{d.local_world_size} processes share this CPU: its energy is not one rank's"
    interval_s = sample_ms / 1000
    for note in [telemetry.reason] if dev.kind == "cuda" and telemetry.reason and _is_lead(d) else []:
        err.print(f"tokenbench: warning: no GPU telemetry: {note}", markup=False, highlight=False, soft_wrap=True)
    idle = _idle_baseline(telemetry, host_energy, idle_s, interval_s, host_is_device=dev.kind == "cpu")
    if idle.get("energy_counter_period_s"):  # a slow counter needs a longer window to resolve
        period_windows = tm.MIN_WINDOW_COUNTER_PERIODS * idle["energy_counter_period_s"]
        telemetry.min_window_s = max(telemetry.min_window_s, period_windows)
    health_before = telemetry.health()
    run_id = d.broadcast(new_run_id()) if d else new_run_id()
    header = {
        "suite": suite_name,
        "workload_args": workload or [],
        "seed": seed,
        "started_at": envmod.utc_now(),
        "argv": sys.argv[1:],
        "n_planned": len(entries) * (d.world_size if d else 1),  # records: one per entry and rank
        "environment": environment,
        "telemetry": {**telemetry.describe(), "interval_s": interval_s, "cpu_energy_reason": host_energy.reason},
        "idle": idle,
        "health_before": health_before or None,
    }
    ranks = d.gather(_rank_summary(d, dev, environment)) if d else None
    if ranks:
        header.update(world_size=d.world_size, nodes=len({r["node_rank"] for r in ranks}), ranks=ranks)
    writer = RunWriter(out_dir, run_id, header) if _is_lead(d) else None
    sink = dist.GatheringWriter(d, run_id, writer) if d else writer
    runner = Runner(
        dev,
        sink,
        environment,
        seed=seed,
        telemetry=telemetry,
        sample_interval_s=interval_s,
        host_energy=host_energy,
        idle_power_w=idle.get("idle_power_w"),
        dist=d,
    )
    signal.signal(signal.SIGTERM, _terminated)  # a scheduler's stop, or torchrun's when a rank died
    if d is not None and d.rank != 0:
        runner.on_failure = _say_failure(d)
        _follow(d, runner, entries, telemetry, health_before)
        return
    assert writer is not None
    if timeline and not telemetry.active:
        err.print(f"tokenbench: warning: --timeline: nothing to sample ({telemetry.reason})", markup=False)
    samples_out = TimelineWriter(out_dir, run_id, tm.SAMPLE_FIELDS[1:]) if timeline and telemetry.active else None
    if samples_out:
        writer.header["timeline_file"] = samples_out.path.name
        runner.on_window = lambda seq, w: samples_out.append(seq, w.t0_s, w.t1_s, w.samples)
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not progress,
    )
    task = bar.add_task("starting", total=len(entries))
    runner.on_start = lambda seq, entry: bar.update(task, description=entry.label)
    runner.on_record = lambda record: bar.advance(task)
    runner.on_failure = _say_failure(d)
    try:
        with bar:
            runner.run(entries)
    except (KeyboardInterrupt, Terminated) as e:
        why = str(e) if isinstance(e, Terminated) else "interrupted by the user (SIGINT)"
        _health_after(writer, telemetry, health_before, None)
        writer.finish("interrupted", envmod.utc_now(), why)
        err.print(
            f"tokenbench: interrupted: {writer.counts and sum(writer.counts.values())} finished record(s) kept in "
            f"{writer.records_path}",
            markup=False,
        )
        raise typer.Exit(143 if isinstance(e, Terminated) else 130) from None
    except BaseException as e:
        writer.finish("crashed", envmod.utc_now(), f"{type(e).__name__}: {e}")
        raise
    finally:
        if samples_out:
            samples_out.close()
    level, detail = _health_after(writer, telemetry, health_before, d)
    records = sink.all_records if isinstance(sink, dist.GatheringWriter) else runner.records
    summary = node.summarize(records, outlier_pct / 100)
    if summary.gpus:
        writer.header["node_summary"] = summary.as_json()
    writer.finish("complete", envmod.utc_now())
    where = f"{d.world_size} processes ({dev.kind})" if d else f"{dev.name} ({dev.torch_device})"
    title = f"tokenbench {suite_name} on {where}, run {run_id}"
    for table in results_tables(records, title=title):
        out.print(table)
    for line in notes(records):
        out.print(line, markup=False, highlight=False, soft_wrap=True)
    if summary.gpus:
        out.print(node.summary_grid(summary).rich())
        for line in summary.lines():
            out.print(line, markup=False, highlight=False, soft_wrap=True)
    if idle.get("idle_power_w") is not None:
        out.print(f"idle baseline: {idle['idle_power_w']:.1f} W over {idle['idle_window_s']:.1f} s", markup=False)
    if level in ("warn", "fail"):
        what = "error" if level == "fail" else "warning"
        err.print(f"tokenbench: {what}: card health changed during the run: {detail}", markup=False, soft_wrap=True)
    n_failed = writer.counts["failed"]
    out.print(
        f"{len(records)} records ({writer.counts['ok']} ok, {writer.counts['skipped']} skipped, "
        f"{n_failed} failed) in {writer.records_path}; run header {writer.header_path}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    code = 1 if n_failed or level == "fail" else 0
    if d is not None:
        d.finish()
        code = dist.leave(code)
    if code:
        raise typer.Exit(code)


def _idle_baseline(
    telemetry: tm.Telemetry, host_energy: HostEnergy, seconds: float, interval_s: float, host_is_device: bool
) -> dict[str, Any]:
    """The device's power at rest before any workload, for the run header; why not, where skipped."""
    if seconds <= 0:
        return {"idle_reason": "not measured (--idle-s 0)"}
    if not telemetry.active and not host_energy.available:
        return {"idle_reason": f"nothing to measure it with: {telemetry.reason}; RAPL: {host_energy.reason}"}
    window = tm.idle_window(tm.Sampler(telemetry, interval_s, host=host_energy), seconds)
    return idle_fields(window, seconds, host_is_device=host_is_device)


def _health_change(telemetry: tm.Telemetry, before: dict[str, Any]) -> tuple[dict, str | None, str | None]:
    after = telemetry.health()
    level, detail = tm.health_change(before, after) if before else (None, "no health counters on this device")
    return after, level, detail


def _health_after(
    writer: RunWriter, telemetry: tm.Telemetry, before: dict[str, Any], d: dist.Dist | None
) -> tuple[str | None, str | None]:
    """Read the card's health counters again and put both reads and the change in the header.

    With several ranks, every rank reads its own card and rank 0 records the worst change,
    naming the ranks it came from.
    """
    after, level, detail = _health_change(telemetry, before)
    if d is not None:
        changes = d.gather((level, detail)) or []
        level = next((lv for lv in ("fail", "warn", "ok") if any(c[0] == lv for c in changes)), None)
        bad = [f"rank {i}: {c[1]}" for i, c in enumerate(changes) if c[0] in ("warn", "fail")]
        detail = "; ".join(bad) if bad else changes[0][1] if changes else detail
        writer.header["health_per_rank"] = [{"rank": i, "change": c[0], "detail": c[1]} for i, c in enumerate(changes)]
    writer.header.update(health_after=after or None, health_change=level, health_detail=detail)
    return level, detail


class Terminated(BaseException):
    """SIGTERM: the run ends as `interrupted`, every finished record kept."""


def _terminated(signum: int, _frame: object) -> None:
    raise Terminated(f"terminated by signal {signum} (SIGTERM): a scheduler, the launcher, or a rank that died")


def _say_failure(d: dist.Dist | None) -> Callable[[dict[str, Any]], None]:
    """Print a failed record's reason at once: under torchrun, before this rank waits for the others."""

    def say(record: dict[str, Any]) -> None:
        if d is None:
            return  # one process: the table at the end says it
        where = f"rank {d.rank} ({record.get('hostname')} {record.get('device')})"
        err.print(f"tokenbench: {where}: {record['workload']} {record.get('label')}: failed: {record['reason']}",
                  markup=False, highlight=False, soft_wrap=True)  # fmt: skip

    return say


def _is_lead(d: dist.Dist | None) -> bool:
    """True in the process that prints and writes: the only one, or rank 0."""
    return d is None or d.rank == 0


def _join_or_launch(nproc: int | None, device: str | None, timeout_s: float) -> dist.Dist | None:
    """Inside torchrun: join the job. Otherwise, with more than one process wanted: start torchrun."""
    if dist.launched():
        if device and device.startswith("cuda:"):
            fail(f"--device {device}: under torchrun each process takes GPU LOCAL_RANK; give --device cuda or cpu")
        kind = "cpu" if (device or "").lower() == "cpu" or cuda_unusable_reason() else "cuda"
        if kind == "cpu" and "OMP_NUM_THREADS" not in os.environ:  # the user's setting stands
            torch.set_num_threads(dist.cpu_threads(int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))
        try:
            return dist.init(kind, timeout_s)
        except (dist.DistError, RuntimeError, ValueError) as e:
            fail(f"cannot join the torchrun job: {e}")
    wanted = nproc
    if wanted is None:  # every visible GPU, unless one device was asked for
        wanted = torch.cuda.device_count() if device is None and cuda_unusable_reason() is None else 1
    if wanted > 1:
        if (device or "").startswith("cuda:"):
            fail(f"--nproc {wanted} runs one process per GPU; --device {device} names one GPU")
        if (device or "cuda") != "cpu" and cuda_unusable_reason() is None and wanted > torch.cuda.device_count():
            fail(f"--nproc {wanted}: torch sees {torch.cuda.device_count()} GPU(s)")
        if sys.argv[1:2] != ["run"]:  # called from code, not as `tokenbench run ...`
            fail("--nproc above 1 needs the tokenbench run command line (it restarts itself under torchrun)")
        args = dist.without_option(sys.argv[2:], "--nproc")
        kind = "cpu" if (device or "").lower() == "cpu" or cuda_unusable_reason() else "cuda"
        raise typer.Exit(dist.launch(wanted, args, kind))
    return None


def _rank_device(device: str | None, d: dist.Dist | None) -> str | None:
    """The device this process measures: under torchrun, GPU LOCAL_RANK (or the CPU)."""
    if d is None or d.backend == "gloo":
        return device
    return f"cuda:{d.local_rank}"


def _rank_summary(d: dist.Dist, dev: Device, environment: dict[str, Any]) -> dict[str, Any]:
    return {**d.fields(), "hostname": environment.get("hostname"), "device": str(dev.torch_device),
            "device_name": dev.name, "gpu_index": environment.get("gpu_index"),
            "gpu_uuid": environment.get("gpu_uuid")}  # fmt: skip


def _follow(d: dist.Dist, runner: Runner, entries: list[Entry], telemetry: tm.Telemetry, before: dict) -> None:
    """A rank other than 0: measure every entry alongside the others; rank 0 writes and prints."""
    try:
        runner.run(entries)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except Terminated:
        raise typer.Exit(143) from None
    _, level, detail = _health_change(telemetry, before)
    d.gather((level, detail))
    d.finish()


def _params_text(workload: workloads.Workload) -> str:
    fields = workload.Params.model_fields
    return ", ".join(f"{name}={field.default!r}" for name, field in fields.items())


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


class Term(str, Enum):
    on_demand = "on-demand"
    one_year = "1-year"
    three_year = "3-year"


@app.command("cost")
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
    from bench.catalog import prices
    from bench.cost import pricing as costmod
    from bench.cost import report as cost_report

    positive = {"--tokens-per-s": tokens_per_s, "--usd-per-gpu-hour": usd_per_gpu_hour, "--power-w": power_w,
                "--idle-power-w": idle_power_w, "--utilisation": utilisation, "--train-params": train_params,
                "--train-tokens": train_tokens, "--mfu": mfu}  # fmt: skip
    for flag, value in positive.items():
        if value is not None and value <= 0:
            fail(f"{flag} must be positive, got {value:g}")

    try:
        cat = prices.load(catalog or [], site or [])
        if utilisation is not None:
            cat = prices.with_site_value(cat, "utilisation", utilisation, "command line (--utilisation)")
    except prices.CatalogError as e:
        fail(str(e))
    if gpu is not None and gpu not in cat.gpus:
        fail(f"--gpu: unknown GPU {gpu!r}; known: {', '.join(sorted(cat.gpus))}")
    if (train_params is None) != (train_tokens is None):
        fail("--train-params and --train-tokens go together")
    if train_params is not None and train_gpus is None:
        fail("--train-gpus is needed with --train-params and --train-tokens")
    if train_params is None and (train_gpus is not None or mfu is not None):
        fail("--train-gpus and --mfu go with --train-params and --train-tokens")
    if term is not Term.on_demand and usd_per_gpu_hour is None:
        fail("--term goes with --usd-per-gpu-hour")
    if usd_per_gpu_hour is not None and gpu is None:
        fail("--usd-per-gpu-hour needs --gpu (the GPU the price is for)")
    if results and tokens_per_s is not None:
        fail("give results or --tokens-per-s, not both")
    if not results and (power_w is not None or idle_power_w is not None) and tokens_per_s is None:
        fail("--power-w and --idle-power-w go with --tokens-per-s")
    if results:
        if power_w is not None or idle_power_w is not None:
            fail("--power-w and --idle-power-w go with --tokens-per-s; results carry their measured power")
        try:
            records = load_records(*results)
        except ResultsError as e:
            fail(str(e))
        if not records:
            fail(f"no records found in {', '.join(map(str, results))}")
        if gpu is not None:
            records = [r for r in records if costmod.record_gpu(r, cat) == gpu]
            if not records:
                fail(f"--gpu {gpu}: no records from that GPU")
        subjects, skipped = costmod.subjects_from_records(records, cat)
    elif tokens_per_s is not None:
        if gpu is None:
            fail("--tokens-per-s needs --gpu (a catalog GPU id)")
        spec = cat.gpus[gpu]
        power = costmod.power_for(spec, power_w, idle_power_w, how="given")
        label = "given rate"
        subjects, skipped = [costmod.Subject(gpu=gpu, label=label, bases=(("tokens", tokens_per_s),), power=power)], []
    else:
        fail("nothing to price: give results (files or directories), or --gpu and --tokens-per-s")
    if not subjects:
        reasons = "; ".join(sorted({s["reason"] for s in skipped}))
        fail(f"no record could be priced: {reasons}")
    extra = [costmod.given_offer(gpu, usd_per_gpu_hour, term.value)] if usd_per_gpu_hour and gpu else []
    report = costmod.analyse(cat, subjects, skipped, extra)
    if train_params is not None and train_tokens is not None and train_gpus is not None:
        for gc in report.gpus.values():
            try:
                gc.projection = costmod.projection_for(cat, gc, subjects, train_params, train_tokens, train_gpus, mfu)
            except ValueError as e:
                err.print(f"tokenbench: warning: {e}", markup=False, highlight=False, soft_wrap=True)
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


app.command("report")(cli_results.report)
app.command("compare")(cli_results.compare)


@app.command("list")
def list_() -> None:
    """List the workloads (with default parameters) and the built-in suites."""
    wt = Table(title="workloads", title_justify="left", header_style="bold")
    for col in ("id", "version", "family", "parameters (defaults)", "description"):
        wt.add_column(col, overflow="fold")
    for w in workloads.REGISTRY.values():
        wt.add_row(w.id, str(w.version), w.family, _params_text(w), w.description)
    st = Table(title="suites", title_justify="left", header_style="bold")
    for col in ("suite", "entries", "description"):
        st.add_column(col, overflow="fold")
    for name in builtin_names():
        try:
            s = load_suite(name)
            st.add_row(name, str(len(s.entries)), s.description)
        except SuiteError as e:
            st.add_row(name, "-", f"[red]invalid: {e}[/]")
    out.print(wt)
    out.print(st)


@app.command("env")
def env_(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
    device: Annotated[str | None, typer.Option(help="cpu, cuda or cuda:N")] = None,
) -> None:
    """Show the environment a run records: versions, host, device and its state as found."""
    dev = _open_device(device)
    info: dict[str, Any] = envmod.capture(dev)
    if as_json:
        out.print_json(json.dumps(info, default=str))
        return
    table = Table(show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in info.items():
        table.add_row(key, "-" if value is None else str(value))
    out.print(table)


def main() -> None:
    app()
