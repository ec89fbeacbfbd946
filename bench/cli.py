"""The `tokenbench` command: run, list, env."""

from __future__ import annotations

import json
import secrets
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import workloads
from bench import env as envmod
from bench.device import Device, DeviceError, detect
from bench.results import RunWriter, new_run_id
from bench.runner import Runner
from bench.suites import Entry, SuiteError, builtin_names, load_suite, select
from bench.table import notes, results_tables

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="tokenbench: LLM and kernel benchmarks in tokens/s, TFLOP/s and GB/s, on GPU or CPU.",
)
# Logs and pipes get a fixed width so the table does not fold into an 80-column mess.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """One clear line on stderr and a non-zero exit; nothing has been run."""
    err.print(f"tokenbench: error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


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
) -> None:
    """Run a suite and print a results table; records go to OUT/<run-id>.jsonl as each one finishes."""
    # Validate the suite before touching the GPU when one is named, so bad input costs nothing.
    if suite:
        _entries(suite, workload or [], detect("cpu"))
    dev = _open_device(device)
    for note in dev.notes:
        err.print(f"tokenbench: warning: {note}", markup=False, highlight=False, soft_wrap=True)
    suite_name, entries = _entries(suite, workload or [], dev)
    if not entries:
        fail(f"nothing to run: suite {suite_name!r} selects no entries")
    seed = secrets.randbelow(2**31) if seed is None else seed
    environment = envmod.capture(dev)
    run_id = new_run_id()
    header = {
        "suite": suite_name,
        "workload_args": workload or [],
        "seed": seed,
        "started_at": envmod.utc_now(),
        "argv": sys.argv[1:],
        "n_planned": len(entries),
        "environment": environment,
    }
    writer = RunWriter(out_dir, run_id, header)
    runner = Runner(dev, writer, environment, seed=seed)
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
    try:
        with bar:
            runner.run(entries)
    except KeyboardInterrupt:
        writer.finish("interrupted", envmod.utc_now(), "interrupted by the user (SIGINT)")
        err.print(
            f"tokenbench: interrupted: {len(runner.records)} finished record(s) kept in {writer.records_path}",
            markup=False,
        )
        raise typer.Exit(130) from None
    except BaseException as e:
        writer.finish("crashed", envmod.utc_now(), f"{type(e).__name__}: {e}")
        raise
    writer.finish("complete", envmod.utc_now())
    title = f"tokenbench {suite_name} on {dev.name} ({dev.torch_device}), run {run_id}"
    for table in results_tables(runner.records, title=title):
        out.print(table)
    for line in notes(runner.records):
        out.print(line, markup=False, highlight=False, soft_wrap=True)
    n_failed = writer.counts["failed"]
    out.print(
        f"{len(runner.records)} records ({writer.counts['ok']} ok, {writer.counts['skipped']} skipped, "
        f"{n_failed} failed) in {writer.records_path}; run header {writer.header_path}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    if n_failed:
        raise typer.Exit(1)


def _params_text(workload: workloads.Workload) -> str:
    fields = workload.Params.model_fields
    return ", ".join(f"{name}={field.default!r}" for name, field in fields.items())


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
