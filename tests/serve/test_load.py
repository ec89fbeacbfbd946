"""Load points against the stub: arrivals, the concurrency cap and its queue time, stop, deadline, processes."""

from __future__ import annotations

import asyncio
import math
import threading
import time

import numpy as np
import pytest

from bench.serve.client import Endpoint
from bench.serve.load import arrival_times, default_deadline_s, run_load_point
from bench.serve.model import LoadSpec, RequestSpec
from bench.serve.selfcheck import LagMonitor
from tests.serve.conftest import endpoint_of


def _requests(n: int, max_tokens: int = 2) -> list[RequestSpec]:
    return [RequestSpec(i, f"prompt number {i}", 3, max_tokens) for i in range(n)]


def test_poisson_arrivals_with_a_fixed_seed():
    rate, n = 10.0, 2000
    t = np.array(arrival_times(n, rate, 1.0, seed=3))
    gaps = np.diff(t)
    assert t[0] == 0.0 and np.all(gaps >= 0)
    se = (1 / rate) / math.sqrt(len(gaps))  # exponential gaps: std = mean = 1/rate
    assert abs(gaps.mean() - 1 / rate) < 3 * se
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.1)  # a Poisson process: CV 1
    assert arrival_times(n, rate, 1.0, seed=3) == t.tolist()  # the same seed, the same schedule
    assert arrival_times(n, rate, 1.0, seed=4) != t.tolist()


def test_burstiness_sets_the_gamma_shape():
    gaps = np.diff(arrival_times(4000, 5.0, 4.0, seed=1))
    assert abs(gaps.mean() - 0.2) < 3 * 0.2 / math.sqrt(4 * len(gaps))  # gamma(k): std = mean / sqrt(k)
    assert gaps.std() / gaps.mean() == pytest.approx(0.5, abs=0.05)  # CV 1/sqrt(4)


def test_infinite_rate_sends_everything_at_once():
    assert arrival_times(5, math.inf) == [0.0] * 5
    assert arrival_times(0, 3.0) == []
    for rate, burst in ((0.0, 1.0), (-1.0, 1.0), (1.0, 0.0), (math.nan, 1.0)):
        with pytest.raises(ValueError, match="must be > 0"):
            arrival_times(3, rate, burst)


def test_queue_time_under_a_concurrency_cap(stub):
    server = stub(ttft_s=0.2, output_len=1)  # each request takes at least 0.2 s in the server
    run = run_load_point(endpoint_of(server), _requests(4), LoadSpec(max_concurrency=1), request_timeout_s=10)
    res = run.results
    assert [r.index for r in res] == [0, 1, 2, 3] and all(r.ok for r in res)
    assert run.max_concurrent == 1
    queue = [r.queue_s for r in res]
    assert queue[0] < 1.0  # nothing ahead of it (only the event loop's own delay; generous for a busy host)
    for k in range(1, 4):
        assert res[k].sent_s >= res[k - 1].done_s  # one at a time: sent when the one before was done
        assert queue[k] >= 0.2 * k  # so about 0, 0.2, 0.4, 0.6 s
        assert queue[k] - queue[k - 1] >= res[k - 1].e2el_s
    for a, b in zip(server.requests, server.requests[1:], strict=False):
        assert b.received >= a.done  # the server never saw two at once


def test_cap_of_two_and_a_server_that_queues_inside(stub):
    server = stub(ttft_s=0.05, output_len=2, max_concurrency=1)
    run = run_load_point(endpoint_of(server), _requests(6), LoadSpec(max_concurrency=2), request_timeout_s=10)
    assert all(r.ok for r in run.results) and run.max_concurrent == 2
    # the server's own queue shows as TTFT, not as client queue time
    assert max(r.ttft_s for r in run.results) >= 0.1


def test_requests_go_at_their_scheduled_times(stub):
    server = stub(output_len=1)
    spec = LoadSpec(request_rate=20.0, num_prompts=8, seed=5)
    run = run_load_point(endpoint_of(server), _requests(8), spec, request_timeout_s=10)
    due = arrival_times(8, 20.0, 1.0, seed=5)
    assert [r.scheduled_s for r in run.results] == due
    assert all(r.sent_s >= r.scheduled_s for r in run.results)  # never early
    assert run.duration_s >= due[-1]
    assert run.wall_start <= run.wall_end and run.started_at.endswith("Z")


def test_results_reach_on_result_as_they_finish(stub):
    seen = []
    run = run_load_point(endpoint_of(stub()), _requests(5), LoadSpec(), request_timeout_s=10, on_result=seen.append)
    assert sorted(r.index for r in seen) == [0, 1, 2, 3, 4] and len(run.results) == 5


def test_stop_event_cancels_requests_in_flight(stub):
    server = stub(ttft_s=0.05, itl_s=0.2, output_len=50)  # 10 s per request
    stop = threading.Event()
    timer = threading.Timer(0.3, stop.set)
    timer.start()
    start = time.monotonic()
    run = run_load_point(
        endpoint_of(server), _requests(10), LoadSpec(request_rate=4.0), request_timeout_s=30, stop=stop
    )
    timer.cancel()
    assert time.monotonic() - start < 5.0  # far less than one request's 10 s
    assert run.interrupted and not run.deadline_passed
    assert run.results and all(r.error == "interrupted" and not r.ok for r in run.results)
    assert len(run.results) < 10  # requests not yet due were never sent, and are not results


def test_deadline_bounds_the_load_point(stub):
    server = stub(hang=True)
    run = run_load_point(endpoint_of(server), _requests(2), LoadSpec(), request_timeout_s=30, deadline_s=0.4)
    assert run.deadline_passed and not run.interrupted
    assert [r.error for r in run.results] == ["load point deadline passed (0.4 s)"] * 2


def test_default_deadline():
    assert default_deadline_s([0.0, 1.0, 5.0], 60.0, None) == 5.0 + 60.0 + 10.0
    assert default_deadline_s([0.0] * 10, 60.0, 4) == 3 * 60.0 + 10.0  # three waves of four


def test_every_request_has_a_timeout(stub):
    run = run_load_point(endpoint_of(stub(hang=True)), _requests(3), LoadSpec(), request_timeout_s=0.3)
    assert [r.error for r in run.results] == ["timed out after 0.3 s"] * 3 and not run.deadline_passed


def test_bad_settings():
    ep = Endpoint("http://127.0.0.1:1")
    for kwargs, spec in (({}, LoadSpec(max_concurrency=0)), ({"processes": 0}, LoadSpec()),
                         ({"request_timeout_s": 0}, LoadSpec()), ({}, LoadSpec(request_rate=0)),
                         ({"processes": 3}, LoadSpec(max_concurrency=2))):  # fmt: skip
        with pytest.raises(ValueError):
            run_load_point(ep, _requests(1), spec, **kwargs)


def test_nothing_to_send():
    ep = Endpoint("http://127.0.0.1:1")
    run = run_load_point(ep, [], LoadSpec())
    assert run.results == [] and run.max_concurrent == 0 and not run.interrupted


def test_two_processes_share_one_timeline(stub):
    server = stub(ttft_s=0.05, output_len=3)
    seen = []
    spec = LoadSpec(request_rate=40.0, max_concurrency=4, seed=2)
    run = run_load_point(endpoint_of(server), _requests(10), spec, request_timeout_s=10, processes=2,
                         on_result=seen.append)  # fmt: skip
    assert [r.index for r in run.results] == list(range(10)) and all(r.ok for r in run.results)
    assert sorted(r.index for r in seen) == list(range(10)) and len(server.requests) == 10
    assert [r.scheduled_s for r in run.results] == arrival_times(10, 40.0, 1.0, seed=2)
    assert all(r.sent_s >= r.scheduled_s - 0.005 for r in run.results)  # one clock; wall-clock offsets to 5 ms
    assert run.processes == 2 and len(run.client_cpu_per_process_s) == 2 and run.max_concurrent <= 4
    assert run.duration_s >= max(r.sent_s + r.e2el_s for r in run.results) - 0.005


def test_lag_monitor_sees_a_blocked_loop():
    async def go():
        m = LagMonitor()
        m.start()
        await asyncio.sleep(0.03)
        time.sleep(0.08)  # the loop is blocked: the next tick comes at least 75 ms late
        await asyncio.sleep(0.03)
        await m.stop()
        return m

    m = asyncio.run(go())
    assert m.max_s >= 0.075 and m.p99_s <= m.max_s and m.cpu_s >= 0.0


def test_stop_reaches_worker_processes(stub):
    server = stub(ttft_s=0.05, itl_s=0.2, output_len=50)  # 10 s per request
    stop = threading.Event()

    def stop_once_both_sent() -> None:
        deadline = time.monotonic() + 20.0
        while len(server.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        stop.set()

    watcher = threading.Thread(target=stop_once_both_sent, daemon=True)
    watcher.start()
    start = time.monotonic()
    run = run_load_point(endpoint_of(server), _requests(2), LoadSpec(), request_timeout_s=30, stop=stop, processes=2)
    watcher.join()
    assert time.monotonic() - start < 9.0  # both stopped well before a request's 10 s
    assert run.interrupted and [r.index for r in run.results] == [0, 1]
    assert all(r.error == "interrupted" for r in run.results)
