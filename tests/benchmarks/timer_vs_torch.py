"""Times one GEMM with tokenbench's timer and with torch.utils.benchmark in one process.

Not a test: it prints figures. On a GPU it also times a plain torch.mm loop between two CUDA
events (the simplest honest measurement) so tokenbench's per-call figure can be held against it.

    python tests/benchmarks/timer_vs_torch.py               # CPU: 1024^3 fp32
    python tests/benchmarks/timer_vs_torch.py --device cuda --m 8192 --n 8192 --k 8192 --dtype bf16

The methods run interleaved (A B A B ...) so slow drift (thermals, a neighbour) hits both alike.
The L2 flush is off for the tokenbench row compared with torch.utils.benchmark, which does not
flush; the row with flush on shows what the flush costs, if anything.

`tokenbench_vs_plain_loop` is the same comparison as a function, for any call and its plain
reference (tests/gpu/first_light.py uses it for the GEMM and the copy).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.utils.benchmark as tub

import workloads
from bench.device.base import detect
from bench.measure.timing import TimerConfig, measure


def tokenbench_median(
    fn: Callable[[], object], dev, flush: bool, seconds: float, working_set_bytes: float | None = None
) -> float:
    """The median of tokenbench's own timer (bench.measure.timing.measure), as a run measures.

    `working_set_bytes` decides the L2 flush as the runner does (None: flush wherever `flush`)."""
    cfg = TimerConfig(warmup_s=0.2, min_time_s=seconds, min_reps=20, max_reps=100_000, flush_l2=flush)
    return measure(fn, dev, cfg, working_set_bytes=working_set_bytes).summary.median


def torch_utils_median(fn: Callable[[], object], seconds: float) -> float:
    # torch.utils.benchmark defaults to one thread; give it the same threads tokenbench runs with
    timer = tub.Timer(stmt="run()", globals={"run": fn}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=seconds).median


def plain_loop_median(fn: Callable[[], object], dev, reps: int) -> float:
    """reps back-to-back calls, divided by reps: between two CUDA events on a GPU (the simplest
    honest measurement), between two host clock reads with a sync at both ends on the CPU."""
    dev.synchronize()
    if dev.kind != "cuda":
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        dev.synchronize()
        return (time.perf_counter() - t0) / reps
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        fn()
    end.record()
    dev.synchronize()
    return start.elapsed_time(end) / 1e3 / reps


def event_loop_median(fn: Callable[[], object], dev, reps: int) -> float:
    """reps back-to-back calls between two CUDA events, divided by reps."""
    return plain_loop_median(fn, dev, reps)


def tokenbench_vs_plain_loop(
    fn: Callable[[], object],
    reference: Callable[[], object],
    dev,
    *,
    rounds: int,
    seconds: float,
    working_set_bytes: float | None,
) -> dict[str, Any]:
    """tokenbench's timer on `fn` against a plain loop of `reference`, interleaved (A B A B ...).

    Returns both medians (the median over rounds of each round's figure) and the throughput ratio
    tokenbench / plain loop = loop time / tokenbench time: 1.0 means the harness loses nothing.
    """
    ours: list[float] = []
    loop: list[float] = []
    for _ in range(rounds):
        ours.append(tokenbench_median(fn, dev, True, seconds, working_set_bytes))
        reps = max(10, int(seconds / max(ours[-1], 1e-9)))
        reference()  # a first call outside the loop: lazy set-up is not the loop's
        loop.append(plain_loop_median(reference, dev, reps))
    ours_s, loop_s = statistics.median(ours), statistics.median(loop)
    return {
        "tokenbench_median_s": ours_s,
        "loop_median_s": loop_s,
        "throughput_ratio": loop_s / ours_s,
        "rounds": rounds,
        "seconds_per_round": seconds,
        "loop_timer": "cuda_event" if dev.kind == "cuda" else "perf_counter",
        "tokenbench_rounds_s": ours,
        "loop_rounds_s": loop,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: auto)")
    ap.add_argument("--m", type=int, default=1024)
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--k", type=int, default=1024)
    ap.add_argument("--dtype", default="fp32")
    ap.add_argument("--seconds", type=float, default=2.0, help="sampling time per method per round")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    dev = detect(args.device)
    gemm = workloads.get("gemm")
    p = gemm.parse({"m": args.m, "n": args.n, "k": args.k, "dtype": args.dtype})
    flops = gemm.counts(p).flops
    results: dict[str, list[float]] = {}
    with gemm.prepare(p, dev, seed=0) as case:
        for _ in range(args.rounds):
            results.setdefault("tokenbench timer (no L2 flush)", []).append(
                tokenbench_median(case.run, dev, False, args.seconds)
            )
            results.setdefault("torch.utils.benchmark", []).append(torch_utils_median(case.run, args.seconds))
            if dev.kind == "cuda":
                results.setdefault("tokenbench timer (L2 flush)", []).append(
                    tokenbench_median(case.run, dev, True, args.seconds)
                )
                reps = max(10, int(args.seconds / results["torch.utils.benchmark"][-1]))
                results.setdefault("torch.mm loop, CUDA events", []).append(event_loop_median(case.run, dev, reps))

    print(f"device: {dev.name} ({dev.torch_device}); gemm {gemm.label(p)}; {args.rounds} interleaved rounds")
    base = statistics.median(results["torch.utils.benchmark"])
    for name, medians in results.items():
        m = statistics.median(medians)
        print(
            f"  {name:32s} median {m * 1e3:9.4f} ms  {flops / m / 1e12:9.3f} TFLOP/s  "
            f"ratio to torch.utils.benchmark {m / base:6.4f}"
        )
    if "torch.mm loop, CUDA events" in results:
        loop = statistics.median(results["torch.mm loop, CUDA events"])
        ours = statistics.median(results["tokenbench timer (L2 flush)"])
        print(f"  tokenbench (L2 flush) throughput / plain event loop throughput: {loop / ours:.4f}")


if __name__ == "__main__":
    main()
