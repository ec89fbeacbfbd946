"""The host's state around a window: other processes' CPU use, the contention rule, the thread choice."""

from __future__ import annotations

import pytest

from bench.measure import host
from bench.measure.host import SLACK_CPUS, Snapshot, cpu_threads, judge, others_cpus, window_fields
from bench.text import plural


def snap(wall: float, own: float, busy: float | None, load: float | None = 0.5) -> Snapshot:
    return Snapshot(wall_s=wall, own_cpu_s=own, busy_s=busy, load_1m=load)


def test_others_are_the_cpus_busy_time_less_this_process_per_wall_second():
    # 2 s of wall; the CPUs were busy 5 s in all, 1.5 s of it this process: others used 3.5 s / 2 s = 1.75 CPUs
    assert others_cpus(snap(10.0, 1.0, 100.0), snap(12.0, 2.5, 105.0)) == pytest.approx(1.75)
    assert others_cpus(snap(10.0, 1.0, 100.0), snap(12.0, 2.5, 101.0)) == 0.0  # tick rounding never goes negative
    assert others_cpus(snap(10.0, 1.0, None), snap(12.0, 2.5, 105.0)) is None


@pytest.mark.parametrize(
    ("cpus", "threads", "others", "contended"),
    [
        (2, 2, 0.0, False),  # a quiet host: two threads on two CPUs
        (2, 2, SLACK_CPUS, False),  # at the slack exactly: not over it
        (2, 2, 0.3, True),  # two threads and a third of a CPU taken: a thread waits
        (2, 1, 1.0, False),  # one thread on the CPU the others left free
        (2, 1, 1.5, True),
        (64, 1, 8.0, False),  # a big host with other work on a few cores
    ],
)
def test_the_rule_is_others_plus_threads_over_cpus_plus_slack(cpus, threads, others, contended):
    reason = judge(cpus, threads, others, (None, None))
    assert (reason is not None) is contended
    if reason:
        assert f"{others:.2f} of {plural(cpus, 'CPU')}" in reason and f"{plural(threads, 'thread')}" in reason


def test_without_cpu_times_the_load_average_stands_in():
    assert judge(2, 1, None, (1.0, 2.2)) is None  # 2.2 <= 2 + 0.25
    assert "load average 2.30 on 2 CPUs" in (judge(2, 1, None, (2.3, None)) or "")
    assert judge(2, 1, None, (None, None)) is None  # nothing known: not flagged


def test_window_fields_by_hand():
    # 0.5 s window, one torch thread on a 2-CPU host, this process used 0.4 s CPU, the CPUs 1.4 s in all
    fields = window_fields(snap(1.0, 0.0, 10.0, 1.2), snap(1.5, 0.4, 11.4, 1.3), cpus=2, torch_threads=1, on_cpu=True)
    assert fields["window_cpu_s"] == pytest.approx(0.4)
    assert fields["cpu_busy_share"] == pytest.approx(0.4 / (0.5 * 1))
    assert fields["host_others_cpus"] == pytest.approx((1.4 - 0.4) / 0.5)  # 2.0: both CPUs
    assert fields["contended"] is True and "2.00 of 2 CPUs" in fields["contention_reason"]
    assert (fields["host_load_1m_start"], fields["host_load_1m_end"]) == (1.2, 1.3)
    gpu = window_fields(snap(1.0, 0.0, 10.0), snap(1.5, 0.4, 10.4), cpus=2, torch_threads=8, on_cpu=False)
    assert gpu["host_threads_expected"] == 1 and gpu["contended"] is False and gpu["contention_reason"] is None


def test_threads_are_one_per_usable_cpu_whatever_the_neighbours_do():
    """The same count on every run of the machine, so two runs compare like with like."""
    quiet = {"host_cpus": 4, "others_cpus": 0.1, "load_avg": [0.1, 0.1, 0.1]}
    assert cpu_threads(quiet, None, env={}) == (4, "4 torch threads, one per usable CPU (--threads N to choose)")
    assert cpu_threads({**quiet, "others_cpus": 3.9}, None, env={})[0] == 4
    assert cpu_threads({**quiet, "host_cpus": 1}, None, env={})[1].startswith("1 torch thread,")
    assert cpu_threads(quiet, 3, env={}) == (3, "3 torch threads, as --threads asks")
    threads, why = cpu_threads(quiet, None, env={"OMP_NUM_THREADS": "2"})
    assert threads is None and "OMP_NUM_THREADS=2" in why  # torch already took it


def test_the_start_warning_names_the_figures_or_says_nothing():
    busy = {"host_cpus": 2, "others_cpus": 1.6, "load_avg": [3.0, 2.0, 1.0]}
    assert "other processes used 1.60 of 2 CPUs at the start" in (host.start_warning(busy, 1) or "")
    assert host.start_warning({**busy, "others_cpus": 0.2}, 2) is None


def test_a_host_window_reads_around_the_inner_window():
    class Inner:
        min_window_s = 0.25
        opened = closed = 0

        def start(self):
            self.opened += 1

        def stop(self):
            self.closed += 1

    inner = Inner()
    w = host.HostWindow(inner, on_cpu=True)
    assert w.fields() == {} and w.min_window_s == 0.25
    w.start()
    sum(i * i for i in range(20000))
    w.stop()
    f = w.fields()
    assert (inner.opened, inner.closed) == (1, 1)
    assert f["host_cpus"] == len(host.usable_cpus()) and f["window_cpu_s"] >= 0 and isinstance(f["contended"], bool)
