"""Bounds on a run's command-line inputs, checked before anything runs: the seed and --nproc.

Each check returns why the value is refused (one line for the CLI to print, exit 2), or None.
The seed is 0 to 2^32 - 1: what a user types, with room for every seed a run derives from it
(the seed plus the entry's position, plus 1 and 1000 per rank for training data), far below the
2^64 that torch's generators take. --nproc is at most the GPUs torch sees, or on the CPU 4
processes per CPU this process may use (its affinity): each rank then runs one intra-op thread,
and a few ranks a core still run (the several-process tests run 4 ranks on 2 cores), while
hundreds only wait on each other and on the gloo group.
"""

from __future__ import annotations

from bench.text import plural

MAX_SEED = 2**32 - 1
CPU_RANKS_PER_CORE = 4


def seed_refusal(seed: int | None) -> str | None:
    """Why `seed` (None: a fresh random one) is refused, or None."""
    if seed is None or 0 <= seed <= MAX_SEED:
        return None
    return f"--seed {seed}: a seed is 0 to {MAX_SEED} (2^32 - 1)"


def nproc_refusal(nproc: int, device_kind: str, cpus: int | None = None, gpus: int | None = None) -> str | None:
    """Why `nproc` processes on `device_kind` (cpu or cuda) are refused, or None.

    `cpus` and `gpus` default to what this process may use: its CPU affinity, the GPUs torch sees.
    """
    if device_kind == "cpu":
        if cpus is None:
            from bench.measure.ranks import usable_cpus

            cpus = usable_cpus()
        most = CPU_RANKS_PER_CORE * max(1, cpus)
        if nproc > most:
            return (
                f"--nproc {nproc}: this process may use {plural(cpus, 'CPU')}; run at most {most} processes on the CPU"
            )
        return None
    if gpus is None:
        import torch

        gpus = torch.cuda.device_count()
    if nproc > gpus:
        return f"--nproc {nproc}: torch sees {plural(gpus, 'GPU')}; one process per GPU"
    return None
