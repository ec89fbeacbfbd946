"""Is the client, not the server, the bottleneck? Event-loop lag and CPU time during a load point.

A single-process asyncio client (vLLM's and InferenceX's too) can fall behind when the rate or the
number of streams is high: its one thread parses every chunk, and while it is busy, chunks wait in
the socket and timers fire late, so TTFT and ITL grow and the achieved rate drops for reasons
that have nothing to do with the server. Two signs show it:

- lag: a ticker task asks to wake every TICK_S (5 ms) and records how late each wake-up came;
  a loop that is free wakes within a fraction of a millisecond.
- CPU: the CPU time (user + system) of the event-loop thread over the load point (time.thread_time,
  so a server stub running in another thread of the same process is not counted).

The rule (`verdict`): a load point is `client_limited` when the lag's p99 exceeds LAG_P99_LIMIT_S
(5 ms) or the loop thread's CPU time over the load's duration exceeds CPU_SHARE_LIMIT (0.9 of one
core) in any client process. Then spread the load over more processes (`processes=N`), or read the
latencies as an upper bound. Where the loop lagged while its thread used under half a core
(STARVED_SHARE), the client did not limit itself: other processes on the host took the CPU. That
point is not `client_limited` but `contended` (the host-state field `tokenbench run` uses), with a
`contention_reason`: its latencies are inflated by the busy host, and a quieter host, not more
client processes, is the remedy.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import numpy as np

TICK_S = 0.005
LAG_P99_LIMIT_S = 0.005
CPU_SHARE_LIMIT = 0.9
STARVED_SHARE = 0.5  # lag with the loop thread under half busy: the host, not the client's own work


@dataclass
class LagMonitor:
    """A ticker task on the running loop that records how late each due wake-up came (seconds)."""

    tick_s: float = TICK_S
    lags_s: list[float] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None
    _cpu0: float = 0.0
    cpu_s: float = 0.0

    def start(self) -> None:
        self._cpu0 = time.thread_time()
        self._task = asyncio.get_running_loop().create_task(self._tick())

    async def stop(self) -> None:
        self.cpu_s = time.thread_time() - self._cpu0
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _tick(self) -> None:
        due = time.perf_counter() + self.tick_s
        while True:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            now = time.perf_counter()
            self.lags_s.append(max(0.0, now - due))
            due = max(due + self.tick_s, now)  # after a long stall, start again from now: one lag, not many

    @property
    def max_s(self) -> float | None:
        return max(self.lags_s) if self.lags_s else None

    @property
    def p99_s(self) -> float | None:
        return float(np.percentile(self.lags_s, 99)) if self.lags_s else None


@dataclass(frozen=True)
class Verdict:
    """The self-check of one load point: the client limited itself, or the host starved it (or neither)."""

    client_limited: bool = False
    client_limited_reason: str | None = None
    contended: bool = False
    contention_reason: str | None = None


def verdict(lag_p99_s: float | None, cpu_s_per_process: list[float], duration_s: float) -> Verdict:
    """client_limited or contended, with the reason, by the rule in this module's docstring."""
    reasons = []
    share = max(cpu_s_per_process) / duration_s if duration_s > 0 and cpu_s_per_process else None
    if lag_p99_s is not None and lag_p99_s > LAG_P99_LIMIT_S:
        reasons.append(f"event-loop lag p99 {lag_p99_s * 1e3:.1f} ms > {LAG_P99_LIMIT_S * 1e3:g} ms")
    if share is not None and share > CPU_SHARE_LIMIT:
        reasons.append(f"client CPU {share:.0%} of a core > {CPU_SHARE_LIMIT:.0%}")
    if not reasons:
        return Verdict()
    if share is not None and share < STARVED_SHARE:  # late, yet hardly busy: the host ran something else
        why = f"the loop thread used only {share:.0%} of a core: other processes on this host took the CPU"
        return Verdict(contended=True, contention_reason="; ".join(reasons) + f" ({why})")
    return Verdict(True, "; ".join(reasons) + " (spread the load over more --client-processes)")
