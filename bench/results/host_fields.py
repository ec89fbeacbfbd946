"""Record fields that describe the host's state during a measurement (contention on a shared machine).

Merged into bench.results.schema.FIELDS; results/README.md documents each one. A field listed here
is a number unless it is named in HOST_INT, HOST_BOOL or HOST_STR. bench/measure/host.py fills them
and states the rule that sets `contended`.
"""

from __future__ import annotations

HOST_FIELDS: dict[str, str] = {
    "host_cpus": "CPUs this process may use (its scheduler affinity)",
    "torch_threads": "torch intra-op threads during the measurement",
    "host_threads_expected": "threads the measurement should keep running: torch_threads on the CPU, 1 on a GPU",
    "host_load_1m_start": "the host's 1-minute load average as the timed window opened",
    "host_load_1m_end": "the host's 1-minute load average as the timed window closed",
    "window_cpu_s": "this process's CPU time (every thread, user + system) inside the timed window",
    "cpu_busy_share": "window_cpu_s / (window wall time x host_threads_expected)",
    "host_others_cpus": "CPUs' worth of time other processes used on this process's CPUs inside the window",
    "contended": "true when the window shared its CPUs with other work (bench/measure/host.py states the rule; "
    "serve records: bench/serve/selfcheck.py)",
    "contention_reason": "why the record is marked contended, with the figures; null when it is not",
    "predicted_call_s": "a call's time as predicted before the entry ran, from its counts and the run's probe "
    "of the device (bench/measure/predict.py); absent where it could not be predicted",
}
HOST_INT: tuple[str, ...] = ("host_cpus", "torch_threads", "host_threads_expected")
HOST_BOOL: tuple[str, ...] = ("contended",)
HOST_STR: tuple[str, ...] = ("contention_reason",)
