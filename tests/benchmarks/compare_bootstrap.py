"""How long `tokenbench compare` takes, and its bootstrap alone, on synthetic runs of a node.

Not a test: it prints figures. The target is under 2 s end to end for 8 GPUs x 6 configurations
x 2,000 samples a side.

    python tests/benchmarks/compare_bootstrap.py             # both cases, with the former bootstrap
    python tests/benchmarks/compare_bootstrap.py --no-old    # without the former bootstrap (slow)

Each case writes a baseline and a candidate run (the hand-made H100 node of tests/support:
6 configurations per GPU, every sample around a chosen median, 1% spread) to a temporary
directory, then times three things: `tokenbench compare BASELINE CANDIDATE` in a fresh
interpreter (end to end: start-up, reading and checking the files, the comparison, the tables;
the best of --repeat runs), the bootstrap alone as compare draws it (the baseline's pooled
records once per configuration, then each candidate record, 2,000 resamples each), and the
same bootstrap by the former way (tests/compare/test_bootstrap.py keeps it: every resample built
and its median taken). The 2.5-million-sample case spreads 2.5 million samples a side over the
same 8 x 6 records (52,084 each).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # for tests.support.handmade

from bench.compare.bootstrap import bootstrap_medians  # noqa: E402
from bench.compare.model import config_key  # noqa: E402
from bench.measure import stats  # noqa: E402
from bench.results.reader import read_runs  # noqa: E402
from tests.compare.test_bootstrap import former_bootstrap_medians  # noqa: E402
from tests.support.handmade import CONFIGS, write_run  # noqa: E402

GPUS = 8
RESAMPLES = 2000


def write_node(out: Path, host: str, samples: int, seed: int) -> None:
    """One run per GPU of every configuration, `samples` samples each (a slowdown of 3% on the candidate's GPU 2)."""
    for gpu in range(GPUS):
        slow = 0.03 if host == "cand" and gpu == 2 else 0.0
        write_run(out, host, gpu=gpu, n=samples, seed=seed + gpu, slowdown=slow)


def end_to_end(base: Path, cand: Path, repeat: int) -> tuple[float, int]:
    """The best wall time of `tokenbench compare` in a fresh interpreter, and its exit code."""
    code = "import sys; from bench.cli import main; sys.argv = ['tokenbench', *sys.argv[1:]]; main()"
    best, rc = float("inf"), -1
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", code, "compare", str(base), str(cand)], cwd=ROOT,
                              capture_output=True, text=True, env={**os.environ, "COLUMNS": "160"})  # fmt: skip
        best, rc = min(best, time.perf_counter() - t0), proc.returncode
    return best, rc


def bootstrap_alone(base: Path, cand: Path, draw: Callable[..., np.ndarray]) -> tuple[float, int]:
    """Seconds to draw every bootstrap compare draws (baseline pooled per configuration, each candidate record)."""
    pooled: dict[tuple[str, str], list[list[float]]] = {}
    for run in read_runs(base):
        for r in run.records:
            pooled.setdefault(config_key(r), []).append(r["samples_s"])
    singles = [r["samples_s"] for run in read_runs(cand) for r in run.records]
    t0 = time.perf_counter()
    for groups in pooled.values():
        draw(groups, RESAMPLES, stats.BASELINE_SEED)
    for samples in singles:
        draw([samples], RESAMPLES, stats.CANDIDATE_SEED)
    return time.perf_counter() - t0, len(pooled) + len(singles)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-old", action="store_true", help="skip the former bootstrap (minutes for 2.5M samples)")
    ap.add_argument("--repeat", type=int, default=3, help="end-to-end runs per case (the best is shown)")
    args = ap.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; {GPUS} GPUs x {len(CONFIGS)} configurations "
          f"a side, {RESAMPLES} resamples")  # fmt: skip
    print(f"{'case':44} {'end to end':>11} {'exit':>5} {'bootstrap':>10} {'former':>10} {'draws':>6}")
    for samples in (2000, 52_084):
        with tempfile.TemporaryDirectory(prefix="tokenbench-compare-") as tmp:
            base, cand = Path(tmp) / "base", Path(tmp) / "cand"
            write_node(base, "base", samples, seed=0)
            write_node(cand, "cand", samples, seed=100)
            e2e, rc = end_to_end(base, cand, args.repeat)
            new, draws = bootstrap_alone(base, cand, bootstrap_medians)
            old = "-" if args.no_old else f"{bootstrap_alone(base, cand, former_bootstrap_medians)[0]:9.2f}s"
            total = GPUS * len(CONFIGS) * samples
            case = f"{samples:,} samples a record ({total:,} a side)"
            print(f"{case:44} {e2e:10.2f}s {rc:5d} {new:9.2f}s {old:>10} {draws:6d}")


if __name__ == "__main__":
    main()
