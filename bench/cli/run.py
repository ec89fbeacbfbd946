"""`tokenbench run`: flags, then a run session, then the tables. torch is imported inside the command."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

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
        float, typer.Option(min=0, help="seconds of idle-power baseline before the first workload (0: none)")
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
            help="processes on this node, one per GPU (or CPU processes "
            "with --device cpu), through torchrun; default: every visible GPU when no --device is given, "
            "else 1",
        ),
    ] = None,
    dist_timeout_s: Annotated[
        float, typer.Option(min=1, help="with several processes: how long a rank waits for the others")
    ] = 600.0,
    outlier_pct: Annotated[
        float, typer.Option(min=0, help="with several GPUs: name a GPU this many % under its node's median")
    ] = DEFAULT_OUTLIER_PCT,
    threads: Annotated[
        int | None,
        typer.Option(min=1, help="torch threads on the CPU; default: the usable CPUs that other processes leave free"),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="text (tables) or json (a summary on stdout; notes on stderr)")
    ] = "text",
) -> None:
    """Run a suite and print a results table; records go to OUT/<run-id>.jsonl as each one finishes."""
    from bench.device.base import detect

    if fmt not in ("text", "json"):
        fail(f"--format {fmt!r}: choose text or json")
    # Validate the suite before touching the GPU when one is named, so bad input costs nothing.
    if suite:
        _entries(suite, workload or [], detect("cpu"))
    how = Measuring(out_dir, device, seed, progress, idle_s, sample_ms, energy_window_s, timeline, nproc,
                    dist_timeout_s, threads=threads, fmt=fmt)  # fmt: skip
    session, files, outcome, suite_name = measure(how, lambda dev: _entries(suite, workload or [], dev), workload or [])
    code = _finish_and_print(session, files, outcome, suite_name, outlier_pct, how.fmt)
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
    threads: int | None = None  # torch threads on the CPU (None: the usable CPUs others leave free)
    fmt: str = "text"  # text, or json: the summary on stdout and nothing else there


def measure(
    how: Measuring, choose: Callable[[Device], tuple[str, list[Entry]]], workload_args: list[str]
) -> tuple[RunSession, RunFiles, Outcome, str]:
    """Join or launch the processes, open the session, run the chosen entries with the records on disk.

    Returns in the lead process only: a rank that follows exits here, and so does an interrupted run.
    """
    from bench.measure import session as ses
    from bench.results.writer import utc_now

    session, files, entries, suite_name = _start(how, choose, workload_args)
    said = partial(_say_interrupted, session, files, suite_name=suite_name, workload_args=workload_args, fmt=how.fmt)
    try:
        outcome = _lead_with_progress(session, files, entries, how.progress, _say_failure(session.dist), said)
    except KeyboardInterrupt:  # in the moment before the first entry: the header must not stay `running`
        why = "interrupted by the user (SIGINT) before the first entry"
        files.writer.finish("interrupted", utc_now(), why)
        outcome = ses.Outcome("interrupted", [], reason=why, exit_code=130)
    if outcome.state == "interrupted":
        _say_interrupted(session, files, outcome, suite_name, workload_args, how.fmt)
    if outcome.state == "crashed":  # records could not be written: the ones before are kept
        fail(outcome.reason or "the results could not be written", code=1)
    return session, files, outcome, suite_name


def _say_interrupted(session: RunSession, files: RunFiles, outcome: Outcome, suite_name: str,
                     workload_args: list[str], fmt: str) -> NoReturn:  # fmt: skip
    """The finished rows, where they are kept, one headline; then exit 130 or 143. When the run was
    abandoned (a call still running in the main thread), the process ends at once without waiting for it."""
    import signal

    from bench.measure import stopping, summary
    from bench.report.table import results_tables

    kept, what = sum(files.writer.counts.values()), summary.what_ran(suite_name, workload_args)
    if outcome.records and fmt == "text":
        title = f"tokenbench {suite_name}: finished before the interrupt"
        for table in results_tables(outcome.records, title=title, width=out.width):
            out.print(table)
    if fmt == "json":
        _print_json(session, files, outcome, suite_name)
    err.print(f"tokenbench: interrupted: {summary.plural(kept, 'finished record')} kept in "
              f"{files.writer.records_path}", markup=False, soft_wrap=True)  # fmt: skip
    err.print(summary.headline(outcome.records, what, _where(session), "interrupted"), markup=False,
              highlight=False, soft_wrap=True)  # fmt: skip
    code = _rank_exit(session, outcome.exit_code)
    for sig, handler in outcome.signals_before.items():
        signal.signal(sig, handler)
    if outcome.abandoned:  # said from the signal watcher's thread: leave without waiting for the call
        stopping.exit_now(code)
    raise typer.Exit(code)


def _where(session: RunSession) -> str:
    d, dev = session.dist, session.device
    return f"{d.world_size} processes ({dev.kind})" if d else f"{dev.name} ({dev.torch_device})"


def _print_json(session: RunSession, files: RunFiles, outcome: Outcome, suite_name: str) -> None:
    import json

    from bench.measure import summary

    w = files.writer
    doc = summary.json_summary(outcome.records, run_id=session.run_id, state=outcome.state, suite=suite_name,
                               device=_where(session), records_path=str(w.records_path),
                               header_path=str(w.header_path), host=session.host)  # fmt: skip
    sys.stdout.write(json.dumps(doc, default=str) + "\n")
    sys.stdout.flush()


def _start(
    how: Measuring, choose: Callable[[Device], tuple[str, list[Entry]]], workload_args: list[str]
) -> tuple[RunSession, RunFiles, list[Entry], str]:
    """Everything before the first entry: processes, device, entries, session (idle baseline), files."""
    from bench.measure import host as hs
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
        host, threads_note = hs.choose_threads(dev.kind, d is not None, how.threads)
        config = ses.SessionConfig(idle_s=how.idle_s, interval_s=how.sample_ms / 1000,
                                   min_window_s=how.energy_window_s, seed=how.seed)  # fmt: skip
        session = ses.RunSession.open(dev, config, d, host=host)
        if session.is_lead:
            _say_start(session, suite_name, workload_args, len(entries), threads_note)
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


def _say_start(session: RunSession, suite_name: str, workload_args: list[str], n: int, threads_note: str) -> None:
    """The title (what runs, where, how many entries, the threads and why), the session's warnings,
    and one line when the host is already busy."""
    from bench.measure import host as hs
    from bench.measure import summary

    err.print(f"{summary.title(suite_name, workload_args, n, _where(session))}; {threads_note}", markup=False,
              highlight=False, soft_wrap=True)  # fmt: skip
    for note in session.warnings:
        warn(note)
    on_cpu = session.device.kind == "cpu"
    busy = hs.start_warning(session.host, int(session.host.get("torch_threads", 1)) if on_cpu else 1)
    if busy:
        warn(busy)


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


def _lead_with_progress(session: RunSession, files: RunFiles, entries: list[Entry], progress: bool,
                        on_failure: Callable[..., None], on_abandon: Callable[[Outcome], None]) -> Outcome:  # fmt: skip
    """Run the entries with a progress bar on stderr (gone when the run ends): entries done of all,
    elapsed, and the time left from the entries' predictions (bench/measure/predict.py: Eta)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from bench.measure import session as ses
    from bench.measure.summary import gpu_sized_warning

    eta, predictions = session.eta(entries)
    gpu_sized = gpu_sized_warning(str(files.writer.header.get("suite")), session.device.kind, predictions)
    if gpu_sized:
        warn(gpu_sized)
    started = [0.0]

    class EtaColumn(TextColumn):
        def render(self, task: Any) -> Any:
            return TextColumn(eta.text(int(task.completed), task.elapsed or 0.0, started[0])).render(task)

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   EtaColumn(""), console=err, transient=True, disable=not progress)  # fmt: skip
    task = bar.add_task("starting", total=len(entries))

    def on_start(seq: int, entry: Entry) -> None:
        started[0] = bar.tasks[0].elapsed or 0.0
        bar.update(task, description=entry.label)

    def abandoned(outcome: Outcome) -> None:
        bar.stop()
        on_abandon(outcome)

    with bar:
        return ses.lead(session, files, entries, abandoned, on_start=on_start, on_record=lambda r: bar.advance(task),
                        on_failure=on_failure)  # fmt: skip


def _finish_and_print(
    session: RunSession, files: RunFiles, outcome: Outcome, suite_name: str, outlier_pct: float, fmt: str = "text"
) -> int:
    """Write the end of the header, print the tables, notes and totals (or the JSON summary), then the
    headline; the run's exit code."""
    from bench.compare import node
    from bench.measure import summary as said
    from bench.report.table import notes, results_tables

    records, writer = outcome.records, files.writer
    summary = node.summarize(records, outlier_pct / 100)
    complete_or_exit(files, outcome, **({"node_summary": summary.as_json()} if summary.gpus else {}))
    what = said.what_ran(suite_name, list(writer.header.get("workload_args") or []))
    headline = said.headline(records, what, _where(session))
    if fmt == "json":
        _print_json(session, files, outcome, suite_name)
        err.print(headline, markup=False, highlight=False, soft_wrap=True)
        return 1 if writer.counts["failed"] or outcome.health_level == "fail" else 0
    title = f"tokenbench {what} on {_where(session)}, run {session.run_id}"
    for table in results_tables(records, title=title, width=out.width):
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
    out.print(f"{said.plural(len(records), 'record')} in {writer.records_path}; run header {writer.header_path}",
              markup=False, highlight=False, soft_wrap=True)  # fmt: skip
    out.print(headline, markup=False, highlight=False, soft_wrap=True)
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
    """Inside torchrun: join the job. Otherwise, with more than one process wanted: start torchrun and exit
    with its code. A combination that cannot run ends here with its reason (exit 2)."""
    from bench.measure import ranks

    try:
        joined = ranks.join_or_launch(nproc, device, timeout_s, command)
    except ranks.Refused as e:
        fail(str(e))
    if isinstance(joined, int):
        raise typer.Exit(joined)
    return joined


def _rank_device(device: str | None, d: Dist | None) -> str | None:
    """The device this process measures: under torchrun, GPU LOCAL_RANK (or the CPU)."""
    if d is None or d.backend == "gloo":
        return device
    return f"cuda:{d.local_rank}"
