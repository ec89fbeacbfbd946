"""tokenbench workloads as pytest-benchmark cases (registered through the `pytest11` entry point).

In a test, the `tokenbench` fixture runs any workload by id and parameters:

    def test_gemm(tokenbench):
        record = tokenbench("gemm", m=4096, n=4096, k=4096, dtype="bf16")
        assert record["frac_peak_flops"] > 0.5

A whole suite runs as tests with `pytest --tokenbench-suite smoke` (one test per entry).

The measurement is the harness's own (the Runner: memory check, output check, telemetry window,
card health), except that the timed calls are made by pytest-benchmark, so `--benchmark-autosave`,
`--benchmark-compare` and `--benchmark-compare-fail` gate on them. Its timer synchronises the device
at both edges of every round, so a round times finished GPU work. The figures (tokens/s, TFLOP/s,
fraction of peak, J/token ...) go into the benchmark's `extra_info`, and the whole tokenbench record
into `extra_info["tokenbench"]`, which `tokenbench report` and `tokenbench compare` read back. The
GPU, driver, CUDA and torch versions go into pytest-benchmark's `machine_info`.

A configuration that cannot run here (a dtype the device lacks, too little memory, one process for
a collective) is a skip with the reason; a wrong answer fails the test.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

EXTRA_FIELDS = (
    "workload", "label", "device_name", "tokens_per_s", "output_tokens_per_s", "tflops", "gb_per_s",
    "frac_peak_flops", "frac_peak_bw", "mfu", "mbu", "busbw_gb_per_s", "energy_per_token_j", "energy_j",
    "power_mean_w", "energy_source", "check_passed",
)  # fmt: skip
SUITE_MODULE = Path(__file__).with_name("pytest_suite.py")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tokenbench", "tokenbench workloads as benchmarks")
    group.addoption(
        "--tokenbench-device", default=None, help="cpu, cuda or cuda:N (default: first usable GPU, else CPU)"
    )
    group.addoption("--tokenbench-suite", action="append", default=[], metavar="SUITE",
                    help="run every entry of this suite (a name or a .toml path) as a test; repeatable")  # fmt: skip
    group.addoption("--tokenbench-warmup-s", type=float, default=None,
                    help="warm-up before pytest-benchmark takes over (default: the suite's or 0.5 s)")  # fmt: skip


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "tokenbench_entry: a suite entry run by the tokenbench plugin")
    if config.getoption("tokenbench_suite") and str(SUITE_MODULE) not in config.args:
        # The module whose one test the entries parametrise: alone when no test paths were named
        # (`pytest --tokenbench-suite smoke` runs the suite, not the project's tests), else beside them.
        if config.args_source == pytest.Config.ArgsSource.ARGS:
            config.args.append(str(SUITE_MODULE))
        else:
            config.args[:] = [str(SUITE_MODULE)]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "tokenbench_entry" not in metafunc.fixturenames:
        return
    from bench.suites import SuiteError, load_suite

    entries, ids = [], []
    for name in metafunc.config.getoption("tokenbench_suite"):
        try:
            suite = load_suite(name)
        except SuiteError as e:
            raise pytest.UsageError(f"--tokenbench-suite {name}: {e}") from None
        for entry in suite.entries:
            entries.append(entry)
            ids.append(f"{suite.name}:{entry.label}")
    metafunc.parametrize("tokenbench_entry", entries, ids=ids)


@dataclass
class _Session:
    """What every tokenbench test of a pytest session shares: the device, its telemetry, one run id."""

    device: Any
    environment: dict[str, Any]
    telemetry: Any
    run_id: str
    seq: int = 0
    records: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture(scope="session")
def tokenbench_session(request: pytest.FixtureRequest) -> _Session:
    from bench import env as envmod
    from bench import telemetry as tm
    from bench.device import DeviceError, detect
    from bench.results import new_run_id

    try:
        dev = detect(request.config.getoption("tokenbench_device"))
    except DeviceError as e:
        raise pytest.UsageError(f"--tokenbench-device: {e}") from None
    return _Session(dev, envmod.capture(dev), tm.for_device(dev), new_run_id())


def synced_perf_counter(device: Any) -> Callable[[], float]:
    """pytest-benchmark's timer for `device`: wait for the device's queued work, then read the clock."""

    def tokenbench_synced_perf_counter() -> float:
        device.synchronize()
        return time.perf_counter()

    return tokenbench_synced_perf_counter


class _ListWriter:
    """The Runner's writer inside pytest: keeps the record instead of writing a file."""

    def __init__(self, run_id: str):
        self.run_id = run_id
        self.records: list[dict[str, Any]] = []

    def append(self, record: dict[str, Any]) -> None:
        self.records.append(record)


def _measure_with(benchmark: Any, warmup_s: float | None) -> Callable[..., Any]:
    """A drop-in for bench.timing.measure whose timed calls are pytest-benchmark's rounds."""
    from bench.timing import Timing, first_call_and_warm_up

    def measure(fn, device, cfg, working_set_bytes=None, window=None, agree=None) -> Timing:
        calls = 0

        def counted() -> object:
            nonlocal calls
            calls += 1
            return fn()

        warm = cfg.warmup_s if warmup_s is None else warmup_s
        first_call_s, warm_reps, warm_s = first_call_and_warm_up(fn, device, warm)
        # pytest-benchmark takes its timer from --benchmark-timer or a marker, by name; this one must
        # close over the device, so it is set on the fixture, which reads it when called.
        benchmark._timer = synced_perf_counter(device)
        if window is not None:
            window.start()
        start = time.perf_counter()
        try:
            benchmark(counted)
        finally:
            if window is not None:
                window.stop()
        wall = time.perf_counter() - start
        stats = getattr(benchmark.stats, "stats", None)
        samples = [float(x) for x in stats.data] if stats is not None else [wall]  # disabled: one plain call
        return Timing.of(
            samples,
            cfg.cv_threshold,
            first_call_s=first_call_s,
            warmup_s=warm_s,
            warmup_reps=warm_reps,
            sampling_wall_s=wall,
            timer="pytest-benchmark, device-synced perf_counter per round",
            l2_flushed=False,
            window_calls=calls,
        )

    return measure


@dataclass
class TokenbenchFixture:
    """Call it with a workload id and parameters (or a suite Entry); returns the tokenbench record."""

    benchmark: Any
    state: _Session
    warmup_s: float | None

    def __call__(self, workload_id: str, **params: Any) -> dict[str, Any]:
        import workloads
        from bench.suites import Entry
        from bench.timing import TimerConfig

        try:
            w = workloads.get(workload_id)
            p = w.parse(params)
        except (KeyError, ValueError) as e:
            pytest.fail(f"tokenbench: {e}", pytrace=False)
        return self.entry(Entry(w, p, TimerConfig(warmup_s=0.5 if self.warmup_s is None else self.warmup_s)))

    def entry(self, entry: Any) -> dict[str, Any]:
        from bench.runner import Runner

        s = self.state
        writer = _ListWriter(s.run_id)
        runner = Runner(s.device, writer, s.environment, seed=0, telemetry=s.telemetry,
                        measure=_measure_with(self.benchmark, self.warmup_s))  # fmt: skip
        record = runner.run_entry(s.seq, entry)
        s.seq += 1
        s.records.append(record)
        self.benchmark.extra_info.update({k: _json_number(record.get(k)) for k in EXTRA_FIELDS if k in record})
        self.benchmark.extra_info["tokenbench"] = {k: _json_number(v) for k, v in record.items()}
        if record["status"] == "skipped":
            pytest.skip(f"tokenbench: {record['reason']}")
        if record["status"] == "failed":
            pytest.fail(f"tokenbench: {entry.label}: {record['reason']}", pytrace=False)
        return record


def _json_number(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


@pytest.fixture
def tokenbench(benchmark: Any, tokenbench_session: _Session, request: pytest.FixtureRequest) -> TokenbenchFixture:
    """Run a tokenbench workload as this test's benchmark: `tokenbench("gemm", m=..., dtype=...)`."""
    return TokenbenchFixture(benchmark, tokenbench_session, request.config.getoption("tokenbench_warmup_s"))


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    """The GPUs, driver, CUDA and torch versions, read without opening a device.

    pytest-benchmark asks for this when a session starts (to compare with a saved baseline) and
    when it saves, so it must not depend on what the tests did in between. Which GPU each
    benchmark ran on is in its own extra_info (device_name, gpu_uuid).
    """
    import torch

    import bench
    from bench import nvml

    driver, _ = nvml.driver_version()
    machine_info["tokenbench"] = {
        "tokenbench_version": bench.__version__,
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda,
        "driver_version": driver,
        "gpus": nvml.gpu_names(),
        "device": config.getoption("tokenbench_device") or "auto",
    }
