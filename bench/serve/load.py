"""One load point: requests sent on an arrival schedule, at most N in flight, every stream timed.

Arrivals follow vLLM's `benchmark_serving`: with request_rate inf every request is due at once;
otherwise the gaps between arrivals are gamma(shape=burstiness, scale=1/(rate*burstiness)) (mean
1/rate; burstiness 1 is a Poisson process, lower is burstier), drawn from numpy's Generator with the
load's seed, and the first request is due at 0. Each request is sent at its absolute due time
(t0 + scheduled_s), so lateness does not add up. With max_concurrency a semaphore holds requests
back; the wait is kept (queue = sent - scheduled) and counted, as vLLM now does.

Bounded: every request has a timeout, the whole load point has a deadline, and a `stop` event
(Ctrl-C) is honoured within POLL_S: nothing more is sent, requests in flight are cancelled and
recorded failed "interrupted", requests never sent are left out.

One process drives everything from one asyncio loop and one aiohttp session. `processes=N` deals
the requests round-robin to N worker processes (each its own loop, session and share of the
concurrency cap), started first and then given one common start time on the wall clock, so their
results fall on the same timeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import multiprocessing as mp
import queue
import resource
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import aiohttp
import numpy as np

from bench.serve.client import Endpoint, send_request
from bench.serve.model import LoadSpec, RequestResult, RequestSpec
from bench.serve.selfcheck import LagMonitor

POLL_S = 0.1  # how often the stop event and the deadline are looked at
DEADLINE_SLACK_S = 10.0
WORKER_START_TIMEOUT_S = 60.0  # a worker process that has not started by then fails the load point
START_MARGIN_S = 0.05  # between handing workers the start time and the start
FD_HEADROOM = 256  # open files beyond one socket per request in flight


class _Flag(Protocol):
    def is_set(self) -> bool: ...


@dataclass
class LoadPointRun:
    """What one load point did: every request's result and the client's own self-check."""

    results: list[RequestResult]  # in index (send) order; requests never sent are absent
    duration_s: float  # t0 (first request due) -> last request done
    started_at: str  # UTC ISO time of t0
    wall_start: float  # time.time() at t0, for the energy window
    wall_end: float  # time.time() when the load ended
    max_concurrent: int  # most requests in flight at once, from the results' send and done times
    client_lag_max_s: float | None = None
    client_lag_p99_s: float | None = None  # the worst process's p99
    client_cpu_s: float | None = None  # summed over client processes
    interrupted: bool = False  # stopped by the stop event
    deadline_passed: bool = False  # the load point's deadline cut it short
    processes: int = 1
    client_cpu_per_process_s: list[float] = field(default_factory=list)


def arrival_times(n: int, request_rate: float, burstiness: float = 1.0, seed: int = 0) -> list[float]:
    """When each of n requests is due, seconds after t0 (vLLM's gamma arrivals; all 0 for rate inf)."""
    if not request_rate > 0:
        raise ValueError(f"request rate must be > 0 requests/s (inf: all at once), got {request_rate}")
    if not burstiness > 0:
        raise ValueError(f"burstiness must be > 0 (1 = Poisson), got {burstiness}")
    if math.isinf(request_rate) or n == 0:
        return [0.0] * n
    rng = np.random.default_rng(seed)
    gaps = rng.gamma(shape=burstiness, scale=1.0 / (request_rate * burstiness), size=n - 1)
    return [0.0, *np.cumsum(gaps).tolist()]


def observed_max_concurrent(results: Sequence[RequestResult]) -> int:
    """vLLM's peak concurrency: a sweep over the half-open [sent_s, sent_s + E2EL) of every successful request
    (an end sorts before a start at a tie: back-to-back requests do not overlap)."""
    events = sorted(
        [(r.sent_s, 1) for r in results if r.ok and r.e2el_s is not None]
        + [(r.sent_s + r.e2el_s, -1) for r in results if r.ok and r.e2el_s is not None]
    )
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


def default_deadline_s(schedule: Sequence[float], request_timeout_s: float, max_concurrency: int | None) -> float:
    """A bound on the whole load point: the last due time plus one request timeout per wave of the cap."""
    n = len(schedule)
    waves = math.ceil(n / max_concurrency) if max_concurrency else 1
    return (schedule[-1] if schedule else 0.0) + request_timeout_s * max(waves, 1) + DEADLINE_SLACK_S


@dataclass
class _Drive:
    """One process's share of a load point (picklable, for worker processes)."""

    endpoint: Endpoint
    requests: list[RequestSpec]
    schedule: list[float]
    max_concurrency: int | None
    request_timeout_s: float
    deadline_s: float


@dataclass
class _Outcome:
    results: list[RequestResult]
    interrupted: bool
    deadline_passed: bool
    lag_max_s: float | None
    lag_p99_s: float | None
    cpu_s: float


async def _drive(d: _Drive, t0: float, stop: _Flag | None, on_result: Callable[[RequestResult], None]) -> _Outcome:
    """Send d.requests at t0 + their due times (perf_counter), cap in flight, stop on `stop` or the deadline."""
    monitor = LagMonitor()
    monitor.start()
    cap = d.max_concurrency or max(1, len(d.requests))
    _raise_fd_limit(cap + FD_HEADROOM)
    sem = asyncio.Semaphore(cap)
    results: list[RequestResult] = []
    connector = aiohttp.TCPConnector(limit=cap, limit_per_host=cap)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None)) as session:

        async def one(spec: RequestSpec, scheduled_s: float) -> None:
            try:
                async with sem:
                    res = await send_request(
                        session, d.endpoint, spec, t0=t0, scheduled_s=scheduled_s, timeout_s=d.request_timeout_s
                    )
                results.append(res)
                on_result(res)
            except asyncio.CancelledError:
                pass  # cancelled while waiting for a slot: never sent, left out
            finally:
                left[0] -= 1
                if left[0] == 0:
                    finished.set()

        async def dispatch() -> None:
            for spec, due in zip(d.requests, d.schedule, strict=True):
                delay = t0 + due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(spec, due)))

        tasks: list[asyncio.Task[None]] = []
        left, finished = [len(d.requests)], asyncio.Event()  # requests not yet done; set when none is left
        if not d.requests:
            finished.set()
        dispatcher = asyncio.create_task(dispatch())
        interrupted, late = await _wait(finished, t0 + d.deadline_s, stop)
        why = f"load point deadline passed ({d.deadline_s:g} s)" if late else "interrupted"
        for t in [dispatcher, *tasks]:
            t.cancel(why)
        outs = await asyncio.gather(dispatcher, *tasks, return_exceptions=True)
        errors = [e for e in outs if isinstance(e, BaseException) and not isinstance(e, asyncio.CancelledError)]
    await monitor.stop()
    if errors:
        raise errors[0]
    results.sort(key=lambda r: r.index)
    return _Outcome(results, interrupted, late, monitor.max_s, monitor.p99_s, monitor.cpu_s)


def _raise_fd_limit(want: int) -> None:
    """Lift this process's open-file limit toward `want` (one socket per request in flight), up to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


async def _wait(finished: asyncio.Event, deadline: float, stop: _Flag | None) -> tuple[bool, bool]:
    """Until every request is done, `stop` is set, or the deadline (perf_counter) passes: (interrupted, late)."""
    while not finished.is_set():
        if stop is not None and stop.is_set():
            return True, False
        left = deadline - time.perf_counter()
        if left <= 0:
            return False, True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(finished.wait(), timeout=min(POLL_S, left))
    return False, False


def run_load_point(
    endpoint: Endpoint,
    requests: Sequence[RequestSpec],
    spec: LoadSpec,
    *,
    request_timeout_s: float = 600.0,
    stop: threading.Event | None = None,
    on_result: Callable[[RequestResult], None] | None = None,
    processes: int = 1,
    deadline_s: float | None = None,
    on_start: Callable[[], None] | None = None,
) -> LoadPointRun:
    """Run one load point (its own asyncio loop; returns when done, stopped or past the deadline).

    The requests are all sent, on the schedule of `spec` (rate, burstiness, seed), at most
    spec.max_concurrency at once. `on_result` sees each result as it completes (in this process).
    `deadline_s` (seconds after t0) defaults to default_deadline_s. `on_start` is called once just before
    t0, after any worker processes are up (the energy window opens there).
    """
    if spec.max_concurrency is not None and spec.max_concurrency < 1:
        raise ValueError(f"max concurrency must be >= 1, got {spec.max_concurrency}")
    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    if spec.max_concurrency is not None and spec.max_concurrency < processes:
        raise ValueError(f"max concurrency {spec.max_concurrency} is less than the {processes} client processes")
    if not request_timeout_s > 0:
        raise ValueError(f"request timeout must be > 0 s, got {request_timeout_s}")
    schedule = arrival_times(len(requests), spec.request_rate, spec.burstiness, spec.seed)
    deadline = (
        deadline_s if deadline_s is not None else default_deadline_s(schedule, request_timeout_s, spec.max_concurrency)
    )
    drive = _Drive(endpoint, list(requests), schedule, spec.max_concurrency, request_timeout_s, deadline)
    callback = on_result or (lambda r: None)
    starting = on_start or (lambda: None)
    if processes == 1:
        return _in_process(drive, stop, callback, starting)
    return _in_workers(drive, processes, stop, callback, starting)


def _in_process(
    drive: _Drive, stop: _Flag | None, on_result: Callable[[RequestResult], None], on_start: Callable[[], None]
) -> LoadPointRun:
    async def main() -> tuple[_Outcome, float, float]:
        on_start()
        t0, wall0 = time.perf_counter(), time.time()
        return await _drive(drive, t0, stop, on_result), t0, wall0

    out, t0, wall0 = asyncio.run(main())
    return _run_of(out.results, wall0, [out], processes=1, fallback_end=time.perf_counter() - t0)


def _run_of(
    results: list[RequestResult], wall0: float, outcomes: list[_Outcome], *, processes: int, fallback_end: float
) -> LoadPointRun:
    """The LoadPointRun of results on one timeline (t0 = wall0) and the processes' self-checks."""
    done = [r.done_s for r in results if r.done_s is not None]
    lag_max = [o.lag_max_s for o in outcomes if o.lag_max_s is not None]
    lag_p99 = [o.lag_p99_s for o in outcomes if o.lag_p99_s is not None]
    return LoadPointRun(
        results=sorted(results, key=lambda r: r.index),
        duration_s=max(done) if done else max(0.0, fallback_end),
        started_at=datetime.fromtimestamp(wall0, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        wall_start=wall0,
        wall_end=time.time(),
        max_concurrent=observed_max_concurrent(results),
        client_lag_max_s=max(lag_max) if lag_max else None,
        client_lag_p99_s=max(lag_p99) if lag_p99 else None,
        client_cpu_s=sum(o.cpu_s for o in outcomes),
        interrupted=any(o.interrupted for o in outcomes),
        deadline_passed=any(o.deadline_passed for o in outcomes),
        processes=processes,
        client_cpu_per_process_s=[o.cpu_s for o in outcomes],
    )


def _share(drive: _Drive, k: int, n: int) -> _Drive:
    """Worker k of n: every n-th request from the k-th, and its part of the concurrency cap."""
    cap = drive.max_concurrency
    part = None if cap is None else max(1, cap // n + (1 if k < cap % n else 0))
    return _Drive(
        drive.endpoint, drive.requests[k::n], drive.schedule[k::n], part, drive.request_timeout_s, drive.deadline_s
    )


def _worker(drive: _Drive, out: Any, go: Any, stop: Any) -> None:
    """A worker process: say ready, wait for the common wall-clock start, drive its share, report.
    Ctrl-C reaches every process of the terminal's group: the parent alone turns it into `stop`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out.put(("ready", None))
    try:
        wall0 = go.get(timeout=WORKER_START_TIMEOUT_S)
    except queue.Empty:
        return
    if wall0 is None:
        return

    async def main() -> _Outcome:
        t0 = time.perf_counter() + (wall0 - time.time())
        return await _drive(drive, t0, stop, lambda r: out.put(("result", r)))

    outcome = asyncio.run(main())
    outcome.results = []  # already sent one by one
    out.put(("done", outcome))


def _in_workers(
    drive: _Drive, n: int, stop: _Flag | None, on_result: Callable[[RequestResult], None], on_start: Callable[[], None]
) -> LoadPointRun:
    """Spread the load over n worker processes (spawned: safe beside threads) and merge their results."""
    ctx = mp.get_context("spawn")
    out, mp_stop = ctx.Queue(), ctx.Event()
    gos = [ctx.Queue() for _ in range(n)]
    procs = [
        ctx.Process(target=_worker, args=(_share(drive, k, n), out, gos[k], mp_stop), daemon=True) for k in range(n)
    ]
    for p in procs:
        p.start()
    try:
        wall0 = time.time()
        results: list[RequestResult] = []
        outcomes: list[_Outcome] = []
        if _await_ready(out, procs, stop):
            on_start()
            wall0 = time.time() + START_MARGIN_S
            for g in gos:
                g.put(wall0)
            results, outcomes = _collect(out, procs, stop, mp_stop, on_result)
    finally:
        for g in gos:
            g.put(None)  # a worker still waiting for the start gives up
        for p in procs:
            p.join(timeout=5.0)
            if p.is_alive():
                p.terminate()
    run = _run_of(results, wall0, outcomes, processes=n, fallback_end=time.time() - wall0)
    run.interrupted = run.interrupted or bool(stop is not None and stop.is_set())
    return run


def _await_ready(out: Any, procs: list[Any], stop: _Flag | None) -> bool:
    """True when every worker has started; False when `stop` came first."""
    ready, deadline = 0, time.monotonic() + WORKER_START_TIMEOUT_S
    while ready < len(procs):
        if stop is not None and stop.is_set():
            return False
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(procs) - ready} of {len(procs)} client worker processes did not start")
        if any(p.exitcode not in (None, 0) for p in procs):
            raise RuntimeError("a client worker process died while starting")
        try:
            kind, _ = out.get(timeout=POLL_S)
        except queue.Empty:
            continue
        ready += kind == "ready"
    return True


def _collect(
    out: Any, procs: list[Any], stop: _Flag | None, mp_stop: Any, on_result: Callable[[RequestResult], None]
) -> tuple[list[RequestResult], list[_Outcome]]:
    """Results as the workers send them (on_result for each), until every worker is done or gone."""
    results: list[RequestResult] = []
    outcomes: list[_Outcome] = []
    while len(outcomes) < len(procs):
        if stop is not None and stop.is_set():
            mp_stop.set()
        try:
            kind, item = out.get(timeout=POLL_S)
        except queue.Empty:
            if all(not p.is_alive() for p in procs):
                break  # a worker died without reporting: keep what came
            continue
        if kind == "result":
            results.append(item)
            on_result(item)
        elif kind == "done":
            outcomes.append(item)
    return results, outcomes
