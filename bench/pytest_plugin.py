"""tokenbench workloads as pytest-benchmark cases (registered through the `pytest11` entry point).

In a test, the `tokenbench` fixture runs any workload by id and parameters (one per test, as
pytest-benchmark allows one benchmark per test):

    def test_gemm(tokenbench):
        record = tokenbench("gemm", m=4096, n=4096, k=4096, dtype="bf16")
        assert record["frac_peak_flops"] > 0.5

A whole suite runs as tests with `pytest --tokenbench-suite smoke` (one test per entry).

The measurement is the harness's own (the Runner: memory check, output check, telemetry window,
card health), except that the timed calls are pytest-benchmark's rounds, so `--benchmark-autosave`,
`--benchmark-compare` and `--benchmark-compare-fail` gate on them. Each round is one call, timed by
a clock that synchronises the device at both of its edges; the number of rounds fills the timer's
minimum time (a suite's `min_time_s`, else `--benchmark-max-time`) and minimum count (`min_reps`,
at least `--benchmark-min-rounds`), and the telemetry window's minimum length. The figures
(tokens/s, TFLOP/s, fraction of peak, J/token ...) go into the benchmark's `extra_info`, and the
whole record, samples included, into `extra_info["tokenbench"]`, which `tokenbench report` and
`tokenbench compare` read back. The GPU, driver, CUDA and torch versions go into pytest-benchmark's
`machine_info`. With pytest-benchmark disabled (`--benchmark-disable`, or under xdist), the
harness's own timer measures, and the record's `timer` says so.

A configuration that cannot run here (a dtype the device lacks, too little memory, one process for
a collective, a call predicted too long for the timer's limits, as `tokenbench run` predicts it) is
a skip with the reason; a wrong answer fails the test.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

EXTRA_FIELDS = (
    "workload", "label", "device_name", "tokens_per_s", "output_tokens_per_s", "tflops", "gb_per_s",
    "frac_peak_flops", "frac_peak_bw", "mfu", "mbu", "busbw_gb_per_s", "energy_per_token_j", "energy_j",
    "power_mean_w", "energy_source", "check_passed",
)  # fmt: skip
SUITE_MODULE = Path(__file__).with_name("pytest_suite.py")
PEDANTIC_TIMER = "pytest-benchmark rounds of one call, device synchronised at both edges"
_ENTRIES = pytest.StashKey[dict[str, Any]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tokenbench", "tokenbench workloads as benchmarks")
    group.addoption("--tokenbench-device", default=None, help="cpu, cuda or cuda:N (default: the first usable GPU)")
    group.addoption("--tokenbench-suite", action="append", default=[], metavar="SUITE",
                    help="run every entry of this suite (a name or a .toml path) as a test; repeatable")  # fmt: skip
    group.addoption("--tokenbench-warmup-s", type=float, default=None,
                    help="warm-up before the timed rounds (default: the suite's, or 0.5 s)")  # fmt: skip
    group.addoption("--tokenbench-idle-s", type=float, default=5.0,
                    help="seconds of idle-power baseline before the first tokenbench test (0: none); as tokenbench "
                         "run's --idle-s")  # fmt: skip


def pytest_configure(config: pytest.Config) -> None:
    names = config.getoption("tokenbench_suite")
    if not names:
        return
    from bench.measure.suites import SuiteError, load_suite

    entries: dict[str, Any] = {}
    for name in names:  # bad suites are a usage error now, before any collection
        try:
            suite = load_suite(name)
        except SuiteError as e:
            raise pytest.UsageError(f"--tokenbench-suite {name}: {e}") from None
        entries.update({f"{suite.name}:{entry.label}": entry for entry in suite.entries})
    config.stash[_ENTRIES] = entries
    if str(SUITE_MODULE) not in config.args:
        # The module whose one test the entries parametrise: alone when no test paths were named
        # (`pytest --tokenbench-suite smoke` runs the suite, not the project's tests), else beside them.
        if config.args_source == pytest.Config.ArgsSource.ARGS:
            config.args.append(str(SUITE_MODULE))
        else:
            config.args[:] = [str(SUITE_MODULE)]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "tokenbench_entry" in metafunc.fixturenames:  # parametrised by id: plain strings in the JSON
        entries: dict[str, Any] = metafunc.config.stash.get(_ENTRIES, {})
        ids = list(entries)
        metafunc.parametrize("tokenbench_entry", ids, ids=ids)


@dataclass
class _Session:
    """The pytest session's tokenbench state: one run session, and the next record's position in it."""

    run: Any  # bench.measure.session.RunSession (imported when the first tokenbench test needs it)
    seq: int = 0


@pytest.fixture(scope="session")
def tokenbench_session(request: pytest.FixtureRequest) -> _Session:
    """The run session every tokenbench test shares, as `tokenbench run` builds it: device, telemetry,
    idle baseline, health before each measurement, CPU energy, one run id. Inputs are seeded with 0."""
    from bench.device.base import DeviceError, detect
    from bench.measure.session import RunSession, SessionConfig

    try:
        dev = detect(request.config.getoption("tokenbench_device"))
    except DeviceError as e:
        raise pytest.UsageError(f"--tokenbench-device: {e}") from None
    idle_s = request.config.getoption("tokenbench_idle_s")
    if idle_s < 0:
        raise pytest.UsageError(f"--tokenbench-idle-s must be 0 or more, got {idle_s:g}")
    return _Session(RunSession.open(dev, SessionConfig(idle_s=idle_s, seed=0)))


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


def rounds_for(per_call_s: float, min_reps: int, min_time_s: float, max_reps: int, max_time_s: float) -> int:
    """Rounds of one call: enough for `min_time_s` and `min_reps`, within `max_reps` and `max_time_s`."""
    per_call_s = max(per_call_s, 1e-9)
    wanted = max(min_reps, math.ceil(min_time_s / per_call_s))
    cap = max(min_reps, min(max_reps, math.floor(max_time_s / per_call_s)))
    return max(1, min(wanted, cap))


def _measure_with(benchmark: Any, warmup_s: float | None) -> Callable[..., Any]:
    """A drop-in for bench.measure.timing.measure whose timed calls are pytest-benchmark's rounds."""
    from bench.measure.timing import Timing, first_call_and_warm_up, measure

    def via_pytest_benchmark(fn, device, cfg, working_set_bytes=None, window=None, agree=None) -> Timing:
        if benchmark.disabled:  # --benchmark-disable, xdist: the harness's own timer, said in the record
            benchmark.pedantic(lambda: None)  # the fixture was used, as pytest-benchmark expects
            return measure(fn, device, cfg, working_set_bytes=working_set_bytes, window=window, agree=agree)
        calls = 0

        def counted() -> object:
            nonlocal calls
            calls += 1
            return fn()

        warm = cfg.warmup_s if warmup_s is None else warmup_s
        first_call_s, warm_reps, warm_s = first_call_and_warm_up(fn, device, warm)
        per_call_s = warm_s / warm_reps if warm_reps else first_call_s
        min_time_s = max(cfg.min_time_s, window.min_window_s if window is not None else 0.0)
        rounds = rounds_for(per_call_s, cfg.min_reps, min_time_s, cfg.max_reps, cfg.max_time_s)
        # pytest-benchmark takes its timer from --benchmark-timer or a marker, by name; this one must
        # close over the device, so it is set on the fixture, which reads it when called.
        benchmark._timer = synced_perf_counter(device)
        if window is not None:
            window.start()
        start = time.perf_counter()
        try:  # rounds of one call, no calibration, no extra call: every call in the window is timed
            benchmark.pedantic(counted, rounds=rounds, iterations=1, warmup_rounds=0)
        finally:
            device.synchronize()
            if window is not None:
                window.stop()
        wall = time.perf_counter() - start
        samples = [float(x) for x in benchmark.stats.stats.data]
        return Timing.of(
            samples,
            cfg.cv_threshold,
            first_call_s=first_call_s,
            warmup_s=warm_s,
            warmup_reps=warm_reps,
            sampling_wall_s=wall,
            timer=PEDANTIC_TIMER,
            l2_flushed=False,
            window_calls=calls,
        )

    return via_pytest_benchmark


@dataclass
class TokenbenchFixture:
    """Call it with a workload id and parameters (or run a suite entry); returns the tokenbench record."""

    benchmark: Any
    state: _Session
    config: pytest.Config
    used: str | None = None

    def __call__(self, workload_id: str, **params: Any) -> dict[str, Any]:
        import workloads
        from bench.measure.suites import Entry
        from bench.measure.timing import MAX_TIME_S, TimerConfig

        why = None
        try:
            w = workloads.get(workload_id)
            p = w.parse(params)
        except (KeyError, ValueError) as e:
            why = str(e)
        if why is not None:
            self.benchmark.skipped = True  # no "fixture was not used" warning on top of the error
            pytest.fail(f"tokenbench: {why}", pytrace=False)
        b = self.benchmark
        max_time_s = min(b._max_time, MAX_TIME_S)  # --benchmark-max-time, within the timer's bound
        timer = TimerConfig(warmup_s=0.5, min_time_s=max_time_s, min_reps=max(1, b._min_rounds), max_reps=100_000,
                            max_time_s=min(max(10 * max_time_s, 1.0), MAX_TIME_S))  # fmt: skip
        return self.entry(Entry(w, p, timer))

    def suite_entry(self, entry_id: str) -> dict[str, Any]:
        """Run the suite entry `entry_id` (see --tokenbench-suite) with its suite's timer."""
        entry = self.config.stash[_ENTRIES][entry_id]
        cfg = entry.timer.model_copy(update={"min_reps": max(entry.timer.min_reps, self.benchmark._min_rounds)})
        return self.entry(type(entry)(entry.workload, entry.params, cfg))

    def entry(self, entry: Any) -> dict[str, Any]:
        from bench.results.writer import finite_json

        if self.used is not None:
            pytest.fail(f"tokenbench: one workload per test (pytest-benchmark keeps one benchmark a test); this "
                        f"test already ran {self.used}", pytrace=False)  # fmt: skip
        self.used = entry.label
        s = self.state
        warmup = self.config.getoption("tokenbench_warmup_s")
        runner = s.run.runner(_ListWriter(s.run.run_id), measure=_measure_with(self.benchmark, warmup),
                              predictor=s.run.predictor)  # as `tokenbench run`: a call too long is skipped  # fmt: skip
        record = runner.run_entry(s.seq, entry)
        s.seq += 1
        clean = finite_json(record)
        self.benchmark.extra_info.update({k: clean.get(k) for k in EXTRA_FIELDS if k in clean})
        self.benchmark.extra_info["tokenbench"] = clean  # samples too: compare works without --benchmark-save-data
        if record["status"] == "skipped":
            self.benchmark.skipped = True
            pytest.skip(f"tokenbench: {record['reason']}")
        if record["status"] == "failed":
            pytest.fail(f"tokenbench: {entry.label}: {record['reason']}", pytrace=False)
        return record


@pytest.fixture
def tokenbench(request: pytest.FixtureRequest, tokenbench_session: _Session) -> TokenbenchFixture:
    """Run a tokenbench workload as this test's benchmark: `tokenbench("gemm", m=..., dtype=...)`."""
    if not request.config.pluginmanager.has_plugin("benchmark"):
        pytest.fail("tokenbench: the tokenbench fixture needs pytest-benchmark (pip install pytest-benchmark)",
                    pytrace=False)  # fmt: skip
    return TokenbenchFixture(request.getfixturevalue("benchmark"), tokenbench_session, request.config)


def _cuda_version() -> str | None:
    """The CUDA version torch was built for, read from package metadata (importing torch takes seconds)."""
    try:
        local = metadata.version("torch").partition("+")[2]
    except metadata.PackageNotFoundError:
        return None
    if local.startswith("cu") and local[2:].isdigit():
        return f"{local[2:-1]}.{local[-1]}"  # cu128 -> 12.8
    for dist_name in ("nvidia-cuda-runtime-cu12", "nvidia-cuda-runtime-cu13", "nvidia-cuda-runtime"):
        try:
            return ".".join(metadata.version(dist_name).split(".")[:2])
        except metadata.PackageNotFoundError:
            continue
    return None


@pytest.hookimpl(optionalhook=True)  # pytest-benchmark's hook: no error in a session without it
def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    """The GPUs, driver, CUDA and torch versions, read without importing torch or opening a device.

    pytest-benchmark asks for this when a session starts (to compare with a saved baseline) and when
    it saves, so it depends on nothing the tests do in between, nor on tokenbench's options. Which
    device each benchmark ran on is in its own extra_info (device_name, and gpu_uuid in the record).
    """
    import bench
    from bench.device import nvml

    driver, _ = nvml.driver_version()
    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = None
    machine_info["tokenbench"] = {
        "tokenbench_version": bench.__version__,
        "torch_version": torch_version,
        "cuda_version": _cuda_version(),
        "driver_version": driver,
        "gpus": nvml.gpu_names(),
    }
