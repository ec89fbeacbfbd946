"""What telemetry sampling costs: the same workloads timed with and without the sampler thread.

Not a test: it prints figures. The target is a slowdown under 1%.

    python tests/benchmarks/telemetry_overhead.py                 # CPU: scripted NVML stand-in
    python tests/benchmarks/telemetry_overhead.py --device cuda   # GPU: the real NVML

On a GPU the sampler reads the real NVML (ctypes releases the interpreter lock during each call).
On a machine without NVML it reads the scripted pynvml stand-in from the tests, a steady 300 W:
pure Python that holds the interpreter lock for the whole of each read, so the CPU figure is a
worse case for the lock than real NVML. Each round runs without, with, without (A B A) so drift
hits both alike: the slowdown is the median over rounds of B / mean(A, A) - 1, and the A/A column,
the median of |A2 / A1 - 1|, is the noise floor it has to be read against. "busy" is the CPU time
the sampler thread itself used, as a share of the window: with a core of its own, the sampler can
delay the timed thread only while it holds the interpreter lock, so this bounds the slowdown even
where the noise floor is too high to see it.
On the CPU, torch gets all cores but one by default: the sampler thread needs a core, which a
GPU host has to spare; with every core busy computing, the thread's wake-ups stall the GEMM's
worker threads, and that measures the CPU's contention, not what telemetry costs a GPU run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # for tests.support.scripted_nvml

import workloads
from bench.device import nvml, telemetry
from bench.device.base import detect
from bench.measure.suites import parse_workload_arg
from bench.measure.timing import TimerConfig, measure

GPU_DEFAULT = ["gemm:m=8192,n=8192,k=8192,dtype=bf16", "decode:model=tiny,batch=1"]
CPU_DEFAULT = ["gemm:m=512,n=512,k=512,dtype=fp32", "decode:model=tiny,batch=1,prompt_len=32,new_tokens=16"]


class BusySampler(telemetry.Sampler):
    """A Sampler that also measures the CPU time its thread spends: an upper bound on how long it
    can hold the interpreter lock, and so on how much it can delay the timed thread."""

    busy_s = 0.0

    def _loop(self) -> None:
        t0 = time.thread_time()
        super()._loop()
        self.busy_s = time.thread_time() - t0


def scripted_telemetry(min_window_s: float = 0.0) -> telemetry.NvmlTelemetry:
    """NVML telemetry read from the tests' scripted pynvml stand-in (a steady 300 W, its energy
    counter the exact integral), installed in place of the real module for this process."""
    from tests.support.scripted_nvml import HANDLE, ScriptedGpu, scripted_pynvml

    nvml.pynvml = scripted_pynvml(ScriptedGpu(clock=time.perf_counter))
    nvml.init_error.cache_clear()
    return telemetry.NvmlTelemetry(HANDLE, min_window_s=min_window_s)


def source_for(dev, min_window_s: float = 0.0) -> tuple[telemetry.Telemetry, str]:
    """The real NVML where it reads this device, else the scripted stand-in; and a label saying which."""
    tel = telemetry.for_device(dev, min_window_s=min_window_s)
    if tel.active:
        return tel, f"NVML ({tel.power_reading})"
    return scripted_telemetry(min_window_s), "scripted pynvml stand-in (holds the GIL)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: auto)")
    ap.add_argument("-w", "--workload", action="append", help="ID:key=value,... (repeatable)")
    ap.add_argument("--interval-ms", type=float, default=telemetry.DEFAULT_INTERVAL_S * 1000)
    ap.add_argument("--seconds", type=float, default=2.0, help="sampling time per arm per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default on the CPU: all cores but one, left to the sampler as on a GPU host)",
    )
    args = ap.parse_args()

    dev = detect(args.device)
    if args.threads or dev.kind == "cpu":
        torch.set_num_threads(args.threads or max(1, (os.cpu_count() or 2) - 1))
    tel, label = source_for(dev)
    specs = args.workload or (GPU_DEFAULT if dev.kind == "cuda" else CPU_DEFAULT)
    cfg = TimerConfig(warmup_s=0.5, min_time_s=args.seconds, min_reps=20, max_reps=1_000_000)
    print(f"device {dev.name} ({dev.torch_device}), torch threads {torch.get_num_threads()} of {os.cpu_count()} cores")
    print(f"telemetry: {label}; interval {args.interval_ms:g} ms")
    print(f"{'workload':50} {'without':>12} {'with':>12} {'slowdown':>9} {'A/A noise':>9} {'busy':>7} {'samples':>8}")
    for spec in specs:
        wid, raw = parse_workload_arg(spec)
        workload = workloads.get(wid)
        params = workload.parse(raw or {})
        with workload.prepare(params, dev, seed=0) as case:
            ratios, noise, busy, without, with_, n = [], [], [], [], [], 0
            for _ in range(args.rounds):
                a1 = measure(case.run, dev, cfg).summary.median
                sampler = BusySampler(tel, args.interval_ms / 1000)
                b = measure(case.run, dev, cfg, window=sampler).summary.median
                a2 = measure(case.run, dev, cfg).summary.median
                n += len(sampler.window.inside()) if sampler.window else 0
                busy.append(sampler.busy_s / sampler.window.duration_s if sampler.window else 0.0)
                without += [a1, a2]
                with_.append(b)
                ratios.append(b / ((a1 + a2) / 2))
                noise.append(abs(a2 / a1 - 1))
        med = statistics.median
        print(
            f"{workload.label(params)[:50]:50} {med(without) * 1e3:10.4f}ms {med(with_) * 1e3:10.4f}ms "
            f"{100 * (med(ratios) - 1):+8.2f}% {100 * med(noise):8.2f}% {100 * med(busy):6.2f}% {n // args.rounds:8d}"
        )


if __name__ == "__main__":
    main()
