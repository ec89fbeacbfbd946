"""What the serve client costs: the highest request rate it sustains, and its TTFT error at 64 streams.

Not a test: it prints figures. The target is under 1 ms of TTFT error at 64 concurrent streams.

    python tests/benchmarks/serve_client_overhead.py
    python tests/benchmarks/serve_client_overhead.py --rates 100,200,400 --streams 64 --ttft-ms 50

The stub server (tests/serve/stub.py) runs in a process of its own, so it does not share the
client's interpreter lock; on a 2-core machine each side then has about one core.

Rate: against a zero-delay stub (the whole answer at once), Poisson arrivals at each asked rate for
--seconds; achieved = completed requests / duration (first due -> last done); late = mean of
sent - scheduled (how far behind its schedule the client sent); loop CPU is the busiest client
process's loop thread (--processes N spreads the load over N client processes). The client sustains a rate while
achieved stays within 5% of asked and nothing fails; the self-check columns (loop lag p99, the loop
thread's CPU share) say whether it was the client that gave out.

TTFT error: the stub answers after a known TTFT (--ttft-ms) and records, on the machine-wide
perf_counter clock that the client also reads, when each request reached its handler and when it
handed the first chunk to the socket. error = client's TTFT - stub's TTFT (received -> first chunk):
everything the client adds (building and sending the request, the loopback, reading and parsing
the chunk) plus the stub's HTTP parsing. It splits into send = received - sent (client and stub
HTTP work before the handler runs) and receive = the rest (first chunk written -> parsed by the client).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing as mp
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # for tests.serve.stub

from bench.serve.client import Endpoint, send_request
from bench.serve.load import arrival_times, run_load_point
from bench.serve.metrics import summarize
from bench.serve.model import LoadSpec, RequestSpec


def _serve(settings: dict[str, Any], out: Any, stop: Any) -> None:
    """Child process: run a StubServer until `stop`, then send back (prompt, received, first_chunk) per request."""
    from tests.serve.stub import StubServer

    with StubServer(**settings) as server:
        out.put(server.base_url)
        stop.wait(600)
        out.put([(r.body.get("prompt"), r.received, r.first_chunk) for r in server.requests])


class StubProcess:
    """A StubServer in a child process (a context manager); `.records` once it has stopped."""

    def __init__(self, **settings: Any):
        ctx = mp.get_context("spawn")
        self._out, self._stop = ctx.Queue(), ctx.Event()
        self._proc = ctx.Process(target=_serve, args=(settings, self._out, self._stop), daemon=True)
        self.records: list[tuple[Any, float, float | None]] = []

    def __enter__(self) -> StubProcess:
        self._proc.start()
        self.base_url = self._out.get(timeout=60)
        self._ps = psutil.Process(self._proc.pid)
        return self

    def cpu_s(self) -> float:
        """The stub process's CPU time so far (user + system)."""
        t = self._ps.cpu_times()
        return t.user + t.system

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.records = self._out.get(timeout=60)
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.terminate()


def _requests(n: int, output_len: int) -> list[RequestSpec]:
    return [RequestSpec(i, f"request {i}", 2, output_len) for i in range(n)]


def rate_sweep(rates: list[float], seconds: float, output_len: int, max_requests: int, processes: int = 1) -> None:
    """Each rate's load point against a zero-delay stub: what the schedule offered, what was sent, how late."""
    print(f"\nRequest rate against a zero-delay stub ({output_len} tokens an answer, Poisson, {seconds:g} s each, "
          f"{processes} client process{'es' if processes > 1 else ''})")  # fmt: skip
    head = ("asked/s", "n", "offered/s", "sent/s", "done/s", "late ms", "late p99", "failed", "lag p99", "loop CPU",
            "stub CPU")  # fmt: skip
    print(" ".join(f"{h:>9}" for h in head), " limited")
    with StubProcess(output_len=output_len) as stub:
        ep = Endpoint(stub.base_url)
        for rate in rates:
            n = max(20, min(max_requests, int(rate * seconds)))
            spec = LoadSpec(request_rate=rate, num_prompts=n, seed=0)
            stub_cpu0 = stub.cpu_s()
            run = run_load_point(ep, _requests(n, output_len), spec, request_timeout_s=30, processes=processes)
            stub_cpu = (stub.cpu_s() - stub_cpu0) / (run.wall_end - run.wall_start)
            s = summarize(run, spec)
            sent = sorted(r.sent_s for r in run.results)
            late = np.asarray([r.queue_s for r in run.results]) * 1e3
            figures = (
                rate, n, (n - 1) / run.results[-1].scheduled_s, (n - 1) / (sent[-1] - sent[0]), s.request_throughput,
                late.mean(), np.percentile(late, 99), s.failed, (run.client_lag_p99_s or 0) * 1e3,
                max(run.client_cpu_per_process_s or [0.0]) / run.duration_s, stub_cpu,
            )  # fmt: skip
            cells = [f"{x:9g}" if isinstance(x, int) else f"{x:9.1f}" for x in figures[:-2]]
            cells += [f"{x:9.0%}" for x in figures[-2:]]
            print(" ".join(cells), "", "yes: " + s.client_limited_reason if s.client_limited_reason else "no")


def ttft_error(streams: int, waves: int, ttft_ms: float, itl_ms: float, output_len: int) -> None:
    """TTFT error at `streams` in flight: steady (Poisson arrivals that keep about that many in flight, by
    Little's law) and in bursts (all at once, so the waves stay in step); after a warm-up burst."""
    n = streams * waves
    busy_s = (ttft_ms + (output_len - 1) * itl_ms) / 1e3  # one request's time in the stub
    print(f"\nTTFT error at {streams} concurrent streams (stub TTFT {ttft_ms:g} ms, ITL {itl_ms:g} ms, "
          f"{output_len} tokens; {n} requests a mode, after a warm-up of {streams})")  # fmt: skip
    print(f"{'ms':>16} {'n':>4} {'max in flight':>13} {'mean':>7} {'median':>7} {'p99':>7} {'max':>7}")
    modes = {"steady": LoadSpec(request_rate=streams / busy_s, max_concurrency=streams, num_prompts=n, seed=1),
             "burst": LoadSpec(max_concurrency=streams, num_prompts=n)}  # fmt: skip
    with StubProcess(ttft_s=ttft_ms / 1e3, itl_s=itl_ms / 1e3, output_len=output_len) as stub:
        ep = Endpoint(stub.base_url)
        run_load_point(ep, _requests(streams, output_len), LoadSpec(max_concurrency=streams), request_timeout_s=60)
        runs = {}
        for k, (mode, spec) in enumerate(modes.items()):
            reqs = [RequestSpec(i, f"request {i}", 2, output_len) for i in range((k + 1) * n, (k + 2) * n)]
            run = run_load_point(ep, reqs, spec, request_timeout_s=60)
            runs[mode] = (run, _t0_of(run))
        rate = modes["steady"].request_rate
        costs = {mode: asyncio.run(_send_costs(stub.base_url, streams, n, r, output_len)) for mode, r in
                 (("steady", rate), ("burst", math.inf))}  # fmt: skip
    stub_times = {prompt: (received, first) for prompt, received, first in stub.records}
    for mode, (run, t0) in runs.items():
        rows = []
        for r in run.results:
            received, first = stub_times[f"request {r.index}"]
            if r.ok and first is not None and r.ttft_s is not None:
                rows.append(
                    (r.ttft_s - (first - received), received - (t0 + r.sent_s), t0 + r.sent_s + r.ttft_s - first)
                )
        for j, name in enumerate(("error", "send", "receive")):
            a = np.asarray([row[j] for row in rows]) * 1e3
            print(f"{mode + ' ' + name:>16} {a.size:4d} {run.max_concurrent:13d} {a.mean():7.3f} {np.median(a):7.3f} "
                  f"{np.percentile(a, 99):7.3f} {a.max():7.3f}")  # fmt: skip
        a = np.asarray(costs[mode]) * 1e3
        print(f"{mode + ' client send':>16} {a.size:4d} {'':13} {a.mean():7.3f} {np.median(a):7.3f} "
              f"{np.percentile(a, 99):7.3f} {a.max():7.3f}")  # fmt: skip
        lag_p99, lag_max = (run.client_lag_p99_s or 0) * 1e3, (run.client_lag_max_s or 0) * 1e3
        cpu = (run.client_cpu_s or 0) / run.duration_s
        print(f"{mode + ' self-check':>16} loop lag p99 {lag_p99:.2f} ms, max {lag_max:.2f} ms; loop CPU {cpu:.0%}")


async def _send_costs(url: str, streams: int, n: int, rate: float, output_len: int) -> list[float]:
    """The client's own send path under load: aiohttp's request start -> request body written to the socket,
    per request (aiohttp's trace hooks), with `streams` in flight and arrivals at `rate`."""
    costs: list[float] = []
    trace = aiohttp.TraceConfig()

    async def started(session: Any, ctx: Any, params: Any) -> None:
        ctx.t = time.perf_counter()

    async def body_sent(session: Any, ctx: Any, params: Any) -> None:
        if not getattr(ctx, "seen", False):
            ctx.seen = True
            costs.append(time.perf_counter() - ctx.t)

    trace.on_request_start.append(started)
    trace.on_request_chunk_sent.append(body_sent)
    sem, ep, t0 = asyncio.Semaphore(streams), Endpoint(url), time.perf_counter()
    connector = aiohttp.TCPConnector(limit=streams)
    async with aiohttp.ClientSession(trace_configs=[trace], connector=connector) as session:

        async def one(i: int, due: float) -> None:
            await asyncio.sleep(max(0.0, t0 + due - time.perf_counter()))
            async with sem:
                spec = RequestSpec(i, f"cost {i}", 2, output_len)
                await send_request(session, ep, spec, t0=t0, scheduled_s=due, timeout_s=60)

        await asyncio.gather(*(one(i, due) for i, due in enumerate(arrival_times(n, rate, 1.0, seed=2))))
    return costs


def _t0_of(run: Any) -> float:
    """The perf_counter reading of the run's t0, from a request: the client's t0 is not kept, but
    each result's absolute send time is t0 + sent_s; recover t0 through the wall clock."""
    return time.perf_counter() - (time.time() - run.wall_start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rates", default="50,100,200,400,800,1600", help="request rates to try, per second")
    ap.add_argument("--seconds", type=float, default=3.0, help="length of each rate's load point")
    ap.add_argument("--max-requests", type=int, default=4000)
    ap.add_argument("--output-len", type=int, default=16)
    ap.add_argument("--processes", type=int, default=1, help="client processes for the rate sweep")
    ap.add_argument("--streams", type=int, default=64)
    ap.add_argument("--waves", type=int, default=4, help="requests = streams x waves")
    ap.add_argument("--ttft-ms", type=float, default=50.0)
    ap.add_argument("--itl-ms", type=float, default=10.0)
    args = ap.parse_args()
    load = ", load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}{load}")
    rates = [float(x) for x in args.rates.split(",")]
    rate_sweep(rates, args.seconds, args.output_len, args.max_requests, args.processes)
    ttft_error(args.streams, args.waves, args.ttft_ms, args.itl_ms, args.output_len)


if __name__ == "__main__":
    main()
