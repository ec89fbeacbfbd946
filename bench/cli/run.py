"""`tokenbench run`: flags, then a run session, then the tables. torch is imported inside the command."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bench.cli.console import err, fail, out, warn
from bench.compare.node import DEFAULT_OUTLIER_PCT
from bench.device.telemetry import DEFAULT_INTERVAL_S, DEFAULT_MIN_WINDOW_S

if TYPE_CHECKING:
    from bench.device.base import Device
    from bench.measure.ranks import Dist
    from bench.measure.session import Outcome, RunFiles, RunSession
    from bench.measure.suites import Entry


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
    ] = DEFAULT_INTERVAL_S * 1000,
    energy_window_s: Annotated[
        float,
        typer.Option(min=0, help="lengthen each timed window to at least this many seconds where NVML measures it"),
    ] = DEFAULT_MIN_WINDOW_S,
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
    ] = DEFAULT_OUTLIER_PCT,
) -> None:
    """Run a suite and print a results table; records go to OUT/<run-id>.jsonl as each one finishes."""
    from bench.device.base import detect

    # Validate the suite before touching the GPU when one is named, so bad input costs nothing.
    if suite:
        _entries(suite, workload or [], detect("cpu"))
    how = Measuring(
        out_dir, device, seed, progress, idle_s, sample_ms, energy_window_s, timeline, nproc, dist_timeout_s
    )
    session, files, outcome, suite_name = measure(how, lambda dev: _entries(suite, workload or [], dev), workload or [])
    code = _finish_and_print(session, files, outcome, suite_name, outlier_pct)
    leave(session, code)


@dataclass(frozen=True)
class Measuring:
    """How to measure, as the run flags say (shared by `run` and `accept`)."""

    out_dir: Path
    device: str | None
    seed: int | None
    progress: bool
    idle_s: float
    sample_ms: float
    energy_window_s: float
    timeline: bool
    nproc: int | None
    dist_timeout_s: float
    command: str = "run"  # what torchrun restarts in every process


def measure(
    how: Measuring, choose: Callable[[Device], tuple[str, list[Entry]]], workload_args: list[str]
) -> tuple[RunSession, RunFiles, Outcome, str]:
    """Join or launch the processes, open the session, run the chosen entries with the records on disk.

    Returns in the lead process only: a rank that follows exits here, and so does an interrupted run.
    """
    from bench.measure import session as ses
    from bench.results.writer import utc_now

    session, files, entries, suite_name = _start(how, choose, workload_args)
    d = session.dist
    try:
        outcome = _lead_with_progress(session, files, entries, how.progress, _say_failure(d))
    except KeyboardInterrupt:  # in the moment before the first entry: the header must not stay `running`
        why = "interrupted by the user (SIGINT) before the first entry"
        files.writer.finish("interrupted", utc_now(), why)
        outcome = ses.Outcome("interrupted", [], reason=why, exit_code=130)
    if outcome.state == "interrupted":
        kept = sum(files.writer.counts.values())
        err.print(f"tokenbench: interrupted: {kept} finished record(s) kept in {files.writer.records_path}",
                  markup=False)  # fmt: skip
        raise typer.Exit(_rank_exit(session, outcome.exit_code))
    if outcome.state == "crashed":  # records could not be written: the ones before are kept
        fail(outcome.reason or "the results could not be written", code=1)
    return session, files, outcome, suite_name


def _start(
    how: Measuring, choose: Callable[[Device], tuple[str, list[Entry]]], workload_args: list[str]
) -> tuple[RunSession, RunFiles, list[Entry], str]:
    """Everything before the first entry: processes, device, entries, session (idle baseline), files."""
    from bench.measure import session as ses
    from bench.measure.limits import seed_refusal
    from bench.results.writer import check_out_dir

    why = check_out_dir(how.out_dir) or seed_refusal(how.seed)  # before any process starts or anything runs
    if why:
        fail(why if why.startswith("--") else f"--out: {why}")
    try:
        d = _join_or_launch(how.nproc, how.device, how.dist_timeout_s, how.command)
        dev = _open_device(_rank_device(how.device, d))
        for note in dev.notes if d is None or d.rank == 0 else []:
            warn(note)
        suite_name, entries = choose(dev)
        if not entries:
            fail(f"nothing to run: suite {suite_name!r} selects no entries")
        config = ses.SessionConfig(idle_s=how.idle_s, interval_s=how.sample_ms / 1000,
                                   min_window_s=how.energy_window_s, seed=how.seed)  # fmt: skip
        session = ses.RunSession.open(dev, config, d)
        for note in session.warnings if session.is_lead else []:
            warn(note)
        files = ses.open_files(session, how.out_dir, session.header(suite_name, workload_args, len(entries)),
                               how.timeline)  # fmt: skip
    except KeyboardInterrupt:
        fail("interrupted while starting (importing torch, opening the device or the idle baseline); "
             "nothing was measured", code=130)  # fmt: skip
    if files is None:  # a rank that follows rank 0
        raise typer.Exit(_rank_exit(session, ses.follow(session, entries, _say_failure(d))))
    if how.timeline and files.timeline is None:
        warn(f"--timeline: nothing to sample ({session.telemetry.reason})")
    return session, files, entries, suite_name


def _rank_exit(session: RunSession, code: int) -> int:
    """An interrupted rank's exit code: through the launcher's file under `--nproc` (torchrun then
    sees every rank end well and stops without a report of its own), else the code itself."""
    from bench.measure import ranks

    if session.dist is None or code not in (130, 143) or not ranks.under_launcher():
        return code
    return ranks.leave(code) if session.dist.rank == 0 else 0


def complete_or_exit(files: RunFiles, outcome: Outcome, **header_fields: Any) -> None:
    """Write the end of the header; a Ctrl-C or SIGTERM that came meanwhile then ends the process."""
    from bench.measure import session as ses

    late = ses.complete(files, outcome, **header_fields)
    if late:
        err.print(f"tokenbench: interrupted after the last record; the run is complete: {files.writer.header_path}",
                  markup=False, soft_wrap=True)  # fmt: skip
        raise typer.Exit(late)


def leave(session: RunSession, code: int) -> None:
    """End the process with `code`: under torchrun, after every rank is done, through the launcher."""
    if session.dist is not None:
        from bench.measure import ranks

        session.dist.finish()
        code = ranks.leave(code)
    if code:
        raise typer.Exit(code)


def _lead_with_progress(
    session: RunSession, files: RunFiles, entries: list[Entry], progress: bool, on_failure: Callable[..., None]
) -> Outcome:
    """Run the entries with a progress bar on stderr (gone when the run ends)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from bench.measure import session as ses

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=err, transient=True, disable=not progress)  # fmt: skip
    task = bar.add_task("starting", total=len(entries))
    with bar:
        return ses.lead(
            session,
            files,
            entries,
            on_start=lambda seq, entry: bar.update(task, description=entry.label),
            on_record=lambda record: bar.advance(task),
            on_failure=on_failure,
        )


def _finish_and_print(
    session: RunSession, files: RunFiles, outcome: Outcome, suite_name: str, outlier_pct: float
) -> int:
    """Write the end of the header, print the tables, notes and totals; the run's exit code."""
    from bench.compare import node
    from bench.report.table import notes, results_tables

    records, writer, d, dev = outcome.records, files.writer, session.dist, session.device
    summary = node.summarize(records, outlier_pct / 100)
    complete_or_exit(files, outcome, **({"node_summary": summary.as_json()} if summary.gpus else {}))
    where = f"{d.world_size} processes ({dev.kind})" if d else f"{dev.name} ({dev.torch_device})"
    for table in results_tables(records, title=f"tokenbench {suite_name} on {where}, run {session.run_id}"):
        out.print(table)
    for line in notes(records):
        out.print(line, markup=False, highlight=False, soft_wrap=True)
    if summary.gpus:
        out.print(node.summary_grid(summary).rich())
        for line in summary.lines():
            out.print(line, markup=False, highlight=False, soft_wrap=True)
    idle = session.idle
    if idle.get("idle_power_w") is not None:
        out.print(f"idle baseline: {idle['idle_power_w']:.1f} W over {idle['idle_window_s']:.1f} s", markup=False)
    level = outcome.health_level
    if level in ("warn", "fail"):
        what = "error" if level == "fail" else "warning"
        err.print(f"tokenbench: {what}: card health changed during the run: {outcome.health_detail}",
                  markup=False, soft_wrap=True)  # fmt: skip
    n_failed = writer.counts["failed"]
    out.print(
        f"{len(records)} records ({writer.counts['ok']} ok, {writer.counts['skipped']} skipped, "
        f"{n_failed} failed) in {writer.records_path}; run header {writer.header_path}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    return 1 if n_failed or level == "fail" else 0


def _open_device(requested: str | None) -> Device:
    from bench.device.base import DeviceError, detect

    try:
        return detect(requested)
    except DeviceError as e:
        fail(str(e))


def _entries(suite_name: str | None, workload_args: list[str], device: Device) -> tuple[str, list[Entry]]:
    from bench.measure.suites import SuiteError, load_suite, select

    name = suite_name or ("node" if device.kind == "cuda" else "smoke")
    try:
        suite = load_suite(name)
        return suite.name, select(suite, workload_args)
    except SuiteError as e:
        fail(str(e))


def _say_failure(d: Dist | None) -> Callable[[dict[str, Any]], None]:
    """Print a failed record's reason at once: under torchrun, before this rank waits for the others."""

    def say(record: dict[str, Any]) -> None:
        if d is None:
            return  # one process: the table at the end says it
        where = f"rank {d.rank} ({record.get('hostname')} {record.get('device')})"
        err.print(f"tokenbench: {where}: {record['workload']} {record.get('label')}: failed: {record['reason']}",
                  markup=False, highlight=False, soft_wrap=True)  # fmt: skip

    return say


def _join_or_launch(nproc: int | None, device: str | None, timeout_s: float, command: str = "run") -> Dist | None:
    """Inside torchrun: join the job. Otherwise, with more than one process wanted: start torchrun."""
    import torch

    from bench.device.base import cuda_unusable_reason
    from bench.measure import ranks as dist
    from bench.measure.limits import nproc_refusal

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
        if sys.argv[1:2] != [command]:  # called from code, not as `tokenbench run ...`
            fail(f"--nproc above 1 needs the tokenbench {command} command line (it restarts itself under torchrun)")
        args = dist.without_option(sys.argv[2:], "--nproc")
        kind = "cpu" if (device or "").lower() == "cpu" or cuda_unusable_reason() else "cuda"
        why = nproc_refusal(wanted, kind)
        if why:
            fail(why)
        raise typer.Exit(dist.launch(wanted, args, kind, command))
    return None


def _rank_device(device: str | None, d: Dist | None) -> str | None:
    """The device this process measures: under torchrun, GPU LOCAL_RANK (or the CPU)."""
    if d is None or d.backend == "gloo":
        return device
    return f"cuda:{d.local_rank}"
