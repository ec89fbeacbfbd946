"""Times one GEMM with tokenbench's timer and with torch.utils.benchmark in one process.

Not a test: it prints figures. On a GPU it also times a plain torch.mm loop between two CUDA
events (the simplest honest measurement) so tokenbench's per-call figure can be held against it.

    python tests/benchmarks/timer_vs_torch.py               # CPU: 1024^3 fp32
    python tests/benchmarks/timer_vs_torch.py --device cuda --m 8192 --n 8192 --k 8192 --dtype bf16

The methods run interleaved (A B A B ...) so slow drift (thermals, a neighbour) hits both alike.
The L2 flush is off for the tokenbench row compared with torch.utils.benchmark, which does not
flush; the row with flush on shows what the flush costs, if anything.
"""

from __future__ import annotations

import argparse
import statistics

import torch
import torch.utils.benchmark as tub

import workloads
from bench.device.base import detect
from bench.measure.timing import TimerConfig, measure


def tokenbench_median(case, dev, flush: bool, seconds: float) -> float:
    cfg = TimerConfig(warmup_s=0.2, min_time_s=seconds, min_reps=20, max_reps=100_000, flush_l2=flush)
    return measure(case.run, dev, cfg).summary.median


def torch_utils_median(case, seconds: float) -> float:
    # torch.utils.benchmark defaults to one thread; give it the same threads tokenbench runs with
    timer = tub.Timer(stmt="run()", globals={"run": case.run}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=seconds).median


def event_loop_median(case, dev, reps: int) -> float:
    """reps back-to-back calls between two CUDA events, divided by reps."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    dev.synchronize()
    start.record()
    for _ in range(reps):
        case.run()
    end.record()
    dev.synchronize()
    return start.elapsed_time(end) / 1e3 / reps


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
                tokenbench_median(case, dev, False, args.seconds)
            )
            results.setdefault("torch.utils.benchmark", []).append(torch_utils_median(case, args.seconds))
            if dev.kind == "cuda":
                results.setdefault("tokenbench timer (L2 flush)", []).append(
                    tokenbench_median(case, dev, True, args.seconds)
                )
                reps = max(10, int(args.seconds / results["torch.utils.benchmark"][-1]))
                results.setdefault("torch.mm loop, CUDA events", []).append(event_loop_median(case, dev, reps))

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
