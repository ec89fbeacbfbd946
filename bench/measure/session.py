"""One measuring session: the device as found, its telemetry, the idle baseline, health, header and writer.

`tokenbench run` and the pytest plugin both measure through a `RunSession`, so their records carry
the same fields (idle baseline, energy above idle, CPU energy, health per measurement). The order
is fixed: open the device's telemetry, measure the idle baseline before any workload (and lengthen
every timed window to resolve a slow energy counter), read the card's health, then run entries,
then read health again. Under torchrun every rank has its own session; rank 0 alone writes.

The session also holds the host as found (bench/measure/host.py: usable CPUs, load, what other
processes use) for the header, and the run's `Predictor` (bench/measure/predict.py), whose probe of
the device is made once and shared by every entry's prediction.

Nothing here prints: what a person should be told comes back as `warnings` and in the `Outcome`.
"""

from __future__ import annotations

import contextlib
import secrets
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.device import telemetry as tm
from bench.device.base import Device
from bench.device.energy import idle_fields
from bench.device.rapl import HostEnergy
from bench.measure import host as host_state
from bench.measure import provenance, ranks, stopping
from bench.measure.predict import Eta, Prediction, Predictor
from bench.measure.runner import Runner
from bench.measure.stopping import HeldSignals, Terminated, exit_at_once
from bench.measure.suites import Entry
from bench.results.writer import RecordSink, ResultsWriteError, RunWriter, TimelineWriter, new_run_id, utc_now


@dataclass(frozen=True)
class SessionConfig:
    """How a session measures; the defaults are `tokenbench run`'s."""

    idle_s: float = 5.0  # seconds of idle-power baseline before the first workload (0: none)
    interval_s: float = tm.DEFAULT_INTERVAL_S  # between telemetry samples inside a timed window
    min_window_s: float = tm.DEFAULT_MIN_WINDOW_S  # shortest energy window where NVML measures it
    seed: int | None = None  # inputs' seed; None: a fresh random one (the same on every rank)


@dataclass
class Outcome:
    """How a run ended: its records (every rank's, on rank 0), the end state and the card's health."""

    state: str  # complete | interrupted | crashed (records could not be written)
    records: list[dict[str, Any]]
    health_level: str | None = None  # ok | warn | fail | None (no health counters)
    health_detail: str | None = None
    reason: str | None = None  # why it was interrupted, or could not be written
    exit_code: int = 0  # 130 after SIGINT, 143 after SIGTERM, 1 when records could not be written
    held: HeldSignals | None = None  # signals held until `complete` has written the header
    abandoned: bool = False  # ended by the signal watcher while the main thread is still inside a call
    signals_before: dict[int, Any] = field(default_factory=dict)  # handlers to restore once the rows are out


def idle_baseline(
    telemetry: tm.Telemetry, host_energy: HostEnergy, seconds: float, interval_s: float, host_is_device: bool
) -> dict[str, Any]:
    """The device's power at rest before any workload, for the run header; why not, where skipped."""
    if seconds <= 0:
        return {"idle_reason": "not measured (--idle-s 0)"}
    if not telemetry.active and not host_energy.available:
        return {"idle_reason": f"nothing to measure it with: {telemetry.reason}; RAPL: {host_energy.reason}"}
    window = tm.idle_window(tm.Sampler(telemetry, interval_s, host=host_energy), seconds)
    return idle_fields(window, seconds, host_is_device=host_is_device)


def _host_energy(device: Device, d: ranks.Dist | None) -> HostEnergy:
    host_energy = HostEnergy()
    if d is not None and device.kind == "cpu" and d.local_world_size > 1:  # RAPL measures the whole package
        host_energy.zones = []
        host_energy.reason = f"{d.local_world_size} processes share this CPU: its energy is not one rank's"
    return host_energy


@dataclass
class RunSession:
    """The measuring state one process shares across its entries. Build it with `RunSession.open`."""

    device: Device
    config: SessionConfig
    environment: dict[str, Any]
    telemetry: tm.Telemetry
    host_energy: HostEnergy
    idle: dict[str, Any]
    health_before: dict[str, Any]
    seed: int
    run_id: str
    dist: ranks.Dist | None = None
    warnings: list[str] = field(default_factory=list)  # for the lead process to print
    host: dict[str, Any] = field(default_factory=dict)  # the host as found: CPUs, load, others' use, threads
    predictor: Predictor | None = None

    @classmethod
    def open(cls, device: Device, config: SessionConfig | None = None, d: ranks.Dist | None = None,
             host: dict[str, Any] | None = None) -> RunSession:  # fmt: skip
        """Read the host and the environment, start telemetry, measure the idle baseline and read the
        card's health. `host` is the host as already looked at (host.busy_now), if it was."""
        import torch

        found = {**(host or host_state.busy_now()), "torch_threads": torch.get_num_threads()}
        cfg = config or SessionConfig()
        seed = secrets.randbelow(2**31) if cfg.seed is None else cfg.seed
        if d:
            seed = d.broadcast(seed)  # every rank draws the same inputs where a collective's check needs it
        environment = provenance.capture(device)
        telemetry = tm.for_device(device, min_window_s=cfg.min_window_s)
        warnings = [f"no GPU telemetry: {telemetry.reason}"] if device.kind == "cuda" and telemetry.reason else []
        host_energy = _host_energy(device, d)
        idle = idle_baseline(telemetry, host_energy, cfg.idle_s, cfg.interval_s, host_is_device=device.kind == "cpu")
        if idle.get("energy_counter_period_s"):  # a slow counter needs a longer window to resolve
            period_windows = tm.MIN_WINDOW_COUNTER_PERIODS * idle["energy_counter_period_s"]
            telemetry.min_window_s = max(telemetry.min_window_s, period_windows)
        health_before = telemetry.health()
        run_id = d.broadcast(new_run_id()) if d else new_run_id()
        return cls(device, cfg, environment, telemetry, host_energy, idle, health_before, seed, run_id, d, warnings,
                   found, Predictor(device))  # fmt: skip

    @property
    def is_lead(self) -> bool:
        """True in the process that prints and writes: the only one, or rank 0."""
        return self.dist is None or self.dist.rank == 0

    def header(self, suite: str, workload_args: list[str], n_entries: int) -> dict[str, Any]:
        """The run header's fields known before the first entry (the writer adds its own)."""
        d = self.dist
        header: dict[str, Any] = {
            "suite": suite,
            "workload_args": workload_args,
            "seed": self.seed,
            "started_at": utc_now(),
            "argv": sys.argv[1:],
            "n_planned": n_entries * (d.world_size if d else 1),  # records: one per entry and rank
            "environment": self.environment,
            "telemetry": {
                **self.telemetry.describe(),
                "interval_s": self.config.interval_s,
                "cpu_energy_reason": self.host_energy.reason,
            },
            "idle": self.idle,
            "health_before": self.health_before or None,
            "host": self.host,
        }
        ranks = d.gather(self._rank_summary()) if d else None
        if d and ranks:
            header.update(world_size=d.world_size, nodes=len({r["node_rank"] for r in ranks}), ranks=ranks)
        return header

    def _rank_summary(self) -> dict[str, Any]:
        assert self.dist is not None
        env = self.environment
        return {**self.dist.fields(), "hostname": env.get("hostname"), "device": str(self.device.torch_device),
                "device_name": self.device.name, "gpu_index": env.get("gpu_index"),
                "gpu_uuid": env.get("gpu_uuid")}  # fmt: skip

    def eta(self, entries: list[Entry]) -> tuple[Eta, list[Prediction | None]]:
        """Every entry's prediction (the probe is made now, once) and the run's time-left estimate."""
        predictions = [self._predict(e) for e in entries]
        return Eta.of(entries, predictions), predictions

    def _predict(self, entry: Entry) -> Prediction | None:
        try:
            return self.predictor.predict(entry) if self.predictor else None
        except Exception:  # counts that need the job's ranks, or a bad probe: the runner says it per entry
            return None

    def runner(self, sink: RecordSink, **hooks: Any) -> Runner:
        """A Runner that measures with this session's telemetry, idle baseline and CPU energy."""
        return Runner(self.device, sink, self.environment, seed=self.seed, telemetry=self.telemetry,
                      sample_interval_s=self.config.interval_s, host_energy=self.host_energy,
                      idle_power_w=self.idle.get("idle_power_w"), dist=self.dist, **hooks)  # fmt: skip

    def health_after(self) -> tuple[dict[str, Any], str | None, str | None]:
        """The card's health counters now, and how they changed since the session opened."""
        after = self.telemetry.health()
        if not self.health_before:
            return after, None, "no health counters on this device"
        level, detail = tm.health_change(self.health_before, after)
        return after, level, detail


@dataclass
class RunFiles:
    """The lead's files of one run: the records and header, and optionally every telemetry sample."""

    writer: RunWriter
    sink: RecordSink
    timeline: TimelineWriter | None = None

    def close(self) -> None:
        if self.timeline:
            self.timeline.close()


def open_files(session: RunSession, out_dir: Path, header: dict[str, Any], timeline: bool) -> RunFiles | None:
    """Rank 0's writer (and a gatherer on every rank under torchrun); None on a rank that only follows."""
    writer = RunWriter(out_dir, session.run_id, header) if session.is_lead else None
    sink: RecordSink | None = ranks.GatheringWriter(session.dist, session.run_id, writer) if session.dist else writer
    if writer is None or sink is None:
        return None
    samples = None
    if timeline and session.telemetry.active:
        samples = TimelineWriter(out_dir, session.run_id, tm.SAMPLE_FIELDS[1:])
        writer.header["timeline_file"] = samples.path.name
    return RunFiles(writer, sink, samples)


def follow(session: RunSession, entries: list[Entry], on_failure: Callable[[dict[str, Any]], None]) -> int:
    """A rank other than 0: measure every entry alongside the others; rank 0 writes. Returns an exit code."""
    d = session.dist
    assert d is not None
    sink = ranks.GatheringWriter(d, session.run_id, None)
    runner = session.runner(sink, on_failure=on_failure, predictor=session.predictor)
    signal.signal(signal.SIGTERM, stopping.terminated)
    try:
        runner.run(entries)
    except KeyboardInterrupt:
        return 130
    except Terminated:
        return 143
    _, level, detail = session.health_after()
    d.gather((level, detail))
    d.finish()
    return 0


def _record_health(session: RunSession, writer: RunWriter, gather: bool) -> tuple[str | None, str | None]:
    """Read the card's health again and put both reads and the change in the header.

    With several ranks, every rank reads its own card and rank 0 records the worst change,
    naming the ranks it came from.
    """
    after, level, detail = session.health_after()
    if gather and session.dist is not None:
        changes = session.dist.gather((level, detail)) or []
        level = next((lv for lv in ("fail", "warn", "ok") if any(c[0] == lv for c in changes)), None)
        bad = [f"rank {i}: {c[1]}" for i, c in enumerate(changes) if c[0] in ("warn", "fail")]
        detail = "; ".join(bad) if bad else changes[0][1] if changes else detail
        writer.header["health_per_rank"] = [{"rank": i, "change": c[0], "detail": c[1]} for i, c in enumerate(changes)]
    writer.header.update(health_after=after or None, health_change=level, health_detail=detail)
    return level, detail


def lead(session: RunSession, files: RunFiles, entries: list[Entry],
         on_abandon: Callable[[Outcome], None] | None = None, **hooks: Any) -> Outcome:  # fmt: skip
    """The lead process: run every entry in this (the main) thread, keep records on disk as they
    finish, end the header.

    SIGINT and SIGTERM end the run as `interrupted` with every finished record kept; a record that
    cannot be written (a full disk) ends it as `crashed` with the reason; any other exception ends
    it as `crashed` and propagates. Once the last entry is done, signals are held until `complete`
    has written the header. In one process a `Watcher` (bench/measure/stopping.py) ends the run
    when a signal comes during a call too long to wait for: the header is marked, `on_abandon` is
    given the outcome (to print it) and the process ends. `hooks` go to the Runner (on_start ...).
    """
    writer = files.writer
    if files.timeline:
        samples = files.timeline
        hooks["on_window"] = lambda seq, w: samples.append(seq, w.t0_s, w.t1_s, w.samples)
    runner = session.runner(files.sink, predictor=session.predictor, **hooks)
    watcher = _watcher(session, runner, writer, on_abandon)
    if not watcher.active and stopping.on_main_thread():
        signal.signal(signal.SIGTERM, stopping.terminated)  # a scheduler's stop, or torchrun's when a rank died
    held = HeldSignals()
    try:
        runner.run(entries)
        held.hold()  # still inside the try: a signal before this line is an interrupt like any other
        watcher.claim()
        held.restore_later(watcher.close())  # the handlers from before the run, once the header is written
    except (KeyboardInterrupt, Terminated) as e:
        watcher.claim()
        code = 143 if isinstance(e, Terminated) else 130
        why = str(e) if isinstance(e, Terminated) else stopping.reason(signal.SIGINT)
        with HeldSignals().holding():
            _mark_interrupted(session, runner, writer, why)
        watcher.marked(code)
        leaving = exit_at_once(code)  # the header is written: a second Ctrl-C (or SIGTERM) ends the process now
        before = {**leaving, **watcher.close()}  # to restore once the rows are out: those from before the run
        return Outcome("interrupted", runner.records, reason=why, exit_code=code, signals_before=before)
    except ResultsWriteError as e:
        watcher.claim()
        with HeldSignals().holding(), contextlib.suppress(ResultsWriteError):
            writer.finish("crashed", utc_now(), str(e))  # where the disk still takes a header
        return Outcome("crashed", runner.records, reason=str(e), exit_code=1)
    except BaseException as e:
        watcher.claim()
        writer.finish("crashed", utc_now(), f"{type(e).__name__}: {e}")
        raise
    finally:
        watcher.close()
        files.close()
    level, detail = _record_health(session, writer, gather=True)
    sink = files.sink
    records = sink.all_records if isinstance(sink, ranks.GatheringWriter) else runner.records
    return Outcome("complete", records, level, detail, held=held)


def _mark_interrupted(session: RunSession, runner: Runner, writer: RunWriter, why: str) -> None:
    """No record is written from now on; the header says interrupted, with the card's health."""
    runner.stop()
    _record_health(session, writer, gather=False)
    writer.finish("interrupted", utc_now(), why)


def _watcher(session: RunSession, runner: Runner, writer: RunWriter,
             on_abandon: Callable[[Outcome], None] | None) -> stopping.Watcher:  # fmt: skip
    """The signal watcher of a lead that measures alone (started), or an idle one: a rank's calls wait on
    the other ranks, which the launcher stops, and its end goes through rank 0's exchange with them."""
    ended: list[Outcome] = []

    def finish(signum: int) -> int:  # in the watcher's thread, while the main thread is inside a call
        why, code = stopping.reason(signum), stopping.exit_code(signum)
        _mark_interrupted(session, runner, writer, why)
        ended.append(Outcome("interrupted", runner.records, reason=why, exit_code=code, abandoned=True))
        return code

    def say() -> None:
        if on_abandon is not None and ended:
            on_abandon(ended[0])

    watcher = stopping.Watcher(finish, say)
    if session.dist is None:
        watcher.start()
    return watcher


def complete(files: RunFiles, outcome: Outcome, **header_fields: Any) -> int:
    """End a run that finished: the header says complete, with what the caller adds (a node summary).

    Returns 130 or 143 when SIGINT or SIGTERM came while the end was written (the run is complete
    all the same), else 0; signals act as before from here on.
    """
    files.writer.header.update(header_fields)
    files.writer.finish("complete", utc_now())
    if outcome.held is None:
        return 0
    outcome.held.release()
    return 128 + outcome.held.signum if outcome.held.signum else 0
