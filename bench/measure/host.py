"""The host's state around a measurement: is this machine busy with other work?

Intra-op threads that share cores with other processes slow every call about evenly, so the CV
does not see it (a 512^3 fp32 GEMM on a 2-core VM with one core taken by another process: 2.4 ms
with one torch thread, 16 ms with two; tiny prefill 1.5 ms against 292 ms). So each timed window
reads, at its start and end, this process's CPU time, the CPU time of the CPUs this process may
use (all processes), and the 1-minute load average. Other processes' use of those CPUs during the
window is then their total busy time less this process's own, in CPUs' worth:

    host_others_cpus = (busy time of the usable CPUs - window_cpu_s) / window wall time

The rule (`judge`): a window is contended when what it needed and what others took do not fit,
    host_others_cpus + host_threads_expected > host_cpus + SLACK_CPUS
where host_threads_expected is torch's intra-op threads on the CPU and 1 (the launching thread) on
a GPU, and SLACK_CPUS (0.25) absorbs the kernel's tick accounting and small daemons. Where the
CPU times cannot be read, the load average stands in for them: contended when the 1-minute load
at either edge of the window is above host_cpus + SLACK_CPUS. cpu_busy_share (this process's CPU time over
what its threads could have used) is recorded as evidence, not judged: a small op keeps one thread
busy and leaves the others waiting, so a low share alone does not mean contention.

What `tokenbench run` does about it on the CPU (`cpu_threads`): unless OMP_NUM_THREADS or
--threads says otherwise, torch runs one intra-op thread per usable CPU, the same on every run of
the machine, so two runs compare like with like (a thread count chosen from a look at the host's
load would change with the neighbours: 512^3 fp32 took 1.28 ms with 2 threads and 2.35 ms with 1,
and `compare` would call that a regression). Contention is measured and marked instead, and the
start warning says `--threads N` when other processes are already busy: too many threads against
a busy core cost 7-200x, one thread too few at most that thread's share.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bench.text import plural

SLACK_CPUS = 0.25
LOOK_S = 0.5  # how long `busy_now` watches the CPUs before a run


def usable_cpus() -> list[int]:
    """The CPUs this process may run on (its affinity), or every CPU where affinity is unknown."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


def load_1m() -> float | None:
    with contextlib.suppress(OSError, AttributeError):
        return os.getloadavg()[0]
    return None


def _busy_s(cpus: list[int]) -> float | None:
    """Seconds the given CPUs spent busy since boot (every process), from the kernel's counters."""
    try:
        import psutil

        per_cpu = psutil.cpu_times(percpu=True)
        fields = ("user", "nice", "system", "irq", "softirq", "steal")
        return sum(sum(getattr(per_cpu[i], f, 0.0) for f in fields) for i in cpus if i < len(per_cpu))
    except Exception:  # no psutil, or an OS without per-CPU times: the load average stands in
        return None


@dataclass(frozen=True)
class Snapshot:
    """One reading of the clocks a window is judged by."""

    wall_s: float
    own_cpu_s: float
    busy_s: float | None
    load_1m: float | None

    @classmethod
    def now(cls, cpus: list[int]) -> Snapshot:
        return cls(time.perf_counter(), time.process_time(), _busy_s(cpus), load_1m())


def others_cpus(start: Snapshot, end: Snapshot) -> float | None:
    """CPUs' worth of time other processes used between two snapshots (None where unknown)."""
    wall = end.wall_s - start.wall_s
    if start.busy_s is None or end.busy_s is None or wall <= 0:
        return None
    others = (end.busy_s - start.busy_s) - (end.own_cpu_s - start.own_cpu_s)
    return max(0.0, others / wall)


def judge(cpus: int, threads: int, others: float | None, loads: tuple[float | None, ...],
          when: str = "during the window") -> str | None:  # fmt: skip
    """Why a window with these figures is contended (the rule in the module doc), or None."""
    if others is not None:
        if others + threads > cpus + SLACK_CPUS:
            return (
                f"other processes used {others:.2f} of {plural(cpus, 'CPU')} {when}, with "
                f"{plural(threads, 'thread')} to run"
            )
        return None
    known = [x for x in loads if x is not None]
    if known and max(known) > cpus + SLACK_CPUS:  # the load counts this process's threads too
        return f"load average {max(known):.2f} on {plural(cpus, 'CPU')} {when}, with {plural(threads, 'thread')} to run"
    return None


def window_fields(start: Snapshot, end: Snapshot, cpus: int, torch_threads: int, on_cpu: bool) -> dict[str, Any]:
    """The record's host fields for one timed window (results/host_fields.py)."""
    threads = min(torch_threads, cpus) if on_cpu else 1
    wall = end.wall_s - start.wall_s
    own = end.own_cpu_s - start.own_cpu_s
    others = others_cpus(start, end)
    reason = judge(cpus, threads, others, (start.load_1m, end.load_1m))
    return {
        "host_cpus": cpus,
        "torch_threads": torch_threads,
        "host_threads_expected": threads,
        "host_load_1m_start": start.load_1m,
        "host_load_1m_end": end.load_1m,
        "window_cpu_s": own,
        "cpu_busy_share": own / (wall * threads) if wall > 0 else None,
        "host_others_cpus": others,
        "contended": reason is not None,
        "contention_reason": reason,
    }


class HostWindow:
    """Wraps a telemetry window (start/stop/min_window_s) and reads the host around the same edges."""

    def __init__(self, inner: Any, on_cpu: bool) -> None:
        self.inner = inner
        self.on_cpu = on_cpu
        self.cpus = usable_cpus()
        self.start_snap: Snapshot | None = None
        self.end_snap: Snapshot | None = None

    @property
    def min_window_s(self) -> float:
        return float(self.inner.min_window_s) if self.inner is not None else 0.0

    def start(self) -> None:
        self.start_snap = Snapshot.now(self.cpus)
        if self.inner is not None:
            self.inner.start()

    def stop(self) -> object:
        got = self.inner.stop() if self.inner is not None else None
        self.end_snap = Snapshot.now(self.cpus)
        return got

    def fields(self) -> dict[str, Any]:
        """The host fields of the window, or {} where it never opened."""
        if self.start_snap is None or self.end_snap is None:
            return {}
        import torch

        return window_fields(self.start_snap, self.end_snap, len(self.cpus), torch.get_num_threads(), self.on_cpu)


def busy_now(look_s: float = LOOK_S) -> dict[str, Any]:
    """The host as found before a run: usable CPUs, load average, what other processes use now."""
    cpus = usable_cpus()
    start = Snapshot.now(cpus)
    time.sleep(look_s)
    end = Snapshot.now(cpus)
    return {"host_cpus": len(cpus), "load_avg": _load_avg(), "others_cpus": others_cpus(start, end),
            "look_s": look_s}  # fmt: skip


def _load_avg() -> list[float] | None:
    with contextlib.suppress(OSError, AttributeError):
        return [round(x, 2) for x in os.getloadavg()]
    return None


def cpu_threads(
    host: dict[str, Any], asked: int | None, env: Mapping[str, str] | None = None
) -> tuple[int | None, str]:
    """Torch intra-op threads for a CPU run, and why: `asked` (--threads), else OMP_NUM_THREADS
    (left to torch: None), else one per usable CPU (the same on every run of this machine)."""
    env = os.environ if env is None else env
    omp = env.get("OMP_NUM_THREADS")
    cpus = int(host["host_cpus"])
    if asked is not None:
        return asked, f"{plural(asked, 'torch thread')}, as --threads asks"
    if omp:
        return None, f"torch threads as OMP_NUM_THREADS={omp} sets"
    return cpus, f"{plural(cpus, 'torch thread')}, one per usable CPU (--threads N to choose)"


def start_warning(host: dict[str, Any], threads: int) -> str | None:
    """One line for the start of a run when the host is already busy, else None."""
    loads = host.get("load_avg") or []
    reason = judge(int(host["host_cpus"]), threads, host.get("others_cpus"), tuple(loads[:1]), "at the start")
    if not reason:
        return None
    return f"the host is busy: {reason}; records measured under contention are marked (--threads 1 waits less)"


def choose_threads(device_kind: str, is_rank: bool, asked: int | None) -> tuple[dict[str, Any] | None, str]:
    """The host as found, and torch's intra-op threads for this run (set here), with why.

    One process on the CPU takes one thread per usable CPU (`cpu_threads`);
    a GPU run, or a rank under torchrun (threads shared out per rank), keeps its threads unless asked."""
    import torch

    if device_kind != "cpu" or is_rank:
        if asked:
            torch.set_num_threads(asked)
        return None, plural(torch.get_num_threads(), "torch thread")
    found = busy_now()
    threads, why = cpu_threads(found, asked)
    if threads:
        torch.set_num_threads(threads)
    return found, why
