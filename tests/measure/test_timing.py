"""Tests of the timer (bench/measure/timing.py) on the CPU, with a device stand-in that records events."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace

import pydantic
import pytest
import torch

from bench.device.base import CpuDevice, cpu_model_name
from bench.measure import timing
from bench.measure.stats import is_unstable, summarize
from bench.measure.timing import TimerConfig, Timing, measure


@dataclass
class RecordingDevice(CpuDevice):
    """A CPU device that logs "sync" and "flush" into a shared event list."""

    events: list[str] = field(default_factory=list)
    l2: bool = True
    on_flush: Callable[[], None] | None = None
    on_sync: Callable[[], None] | None = None

    def synchronize(self) -> None:
        self.events.append("sync")
        if self.on_sync:
            self.on_sync()

    def flush_l2(self) -> None:
        self.events.append("flush")
        if self.on_flush:
            self.on_flush()

    @property
    def l2_flush(self) -> bool:
        return self.l2


def _device(l2: bool = True) -> RecordingDevice:
    # built the way bench.device.base.cpu_device() builds a CpuDevice
    return RecordingDevice(torch_device=torch.device("cpu"), name=cpu_model_name(), l2=l2)


def _recorder(dev: RecordingDevice, sleep_s: float = 0.0) -> Callable[[], None]:
    def fn() -> None:
        dev.events.append("call")
        if sleep_s:
            time.sleep(sleep_s)

    return fn


def _fast(**kw: float | int | bool) -> TimerConfig:
    """A config that finishes in milliseconds; tests override what they check."""
    base = {"warmup_s": 0.0, "min_time_s": 0.0, "min_reps": 5, "max_reps": 5, "max_time_s": 5.0}
    return TimerConfig(**{**base, **kw})


def _call_indices(events: list[str]) -> list[int]:
    return [i for i, e in enumerate(events) if e == "call"]


# --- (a) synchronisation at both edges -----------------------------------------------------


def test_every_sampled_call_is_bracketed_by_syncs() -> None:
    dev = _device(l2=False)
    t = measure(_recorder(dev), dev, _fast(warmup_s=0.01, min_reps=20, max_reps=20))
    calls = _call_indices(dev.events)
    assert len(calls) == 1 + t.warmup_reps + t.summary.n  # first call + warm-up + samples
    sampled = calls[-t.summary.n :]
    assert len(sampled) == 20
    for i in sampled:
        assert dev.events[i - 1] == "sync", dev.events[i - 3 : i + 2]
        assert dev.events[i + 1] == "sync", dev.events[i - 3 : i + 2]
    assert "flush" not in dev.events


def test_first_call_is_bracketed_by_syncs() -> None:
    dev = _device(l2=False)
    measure(_recorder(dev), dev, _fast())
    assert dev.events[:3] == ["sync", "call", "sync"]


# --- (b) L2 flush before each sampled call, outside the timed window ----------------------


def test_flush_precedes_each_sampled_call_outside_the_leading_sync() -> None:
    dev = _device(l2=True)
    t = measure(_recorder(dev), dev, _fast(warmup_s=0.01, min_reps=10, max_reps=10, flush_l2=True))
    assert t.l2_flushed
    sampled = _call_indices(dev.events)[-t.summary.n :]
    for i in sampled:
        assert dev.events[i - 2 : i + 2] == ["flush", "sync", "call", "sync"]
    # one flush per warm-up call and per sample; the first call is not flushed
    assert dev.events.count("flush") == t.warmup_reps + t.summary.n


@pytest.mark.parametrize(("cfg_flush", "device_flush"), [(False, True), (True, False), (False, False)])
def test_no_flush_unless_both_config_and_device_want_it(cfg_flush: bool, device_flush: bool) -> None:
    dev = _device(l2=device_flush)
    t = measure(_recorder(dev), dev, _fast(warmup_s=0.005, flush_l2=cfg_flush))
    assert "flush" not in dev.events
    assert t.l2_flushed is False


class FakeClock:
    """perf_counter stand-in: only the events we script move time forward."""

    def __init__(self) -> None:
        self.now = 0.0

    def advance(self, dt: float) -> Callable[[], None]:
        def tick() -> None:
            self.now += dt

        return tick

    def perf_counter(self) -> float:
        return self.now


def test_flush_time_never_lands_in_a_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(timing, "time", SimpleNamespace(perf_counter=clock.perf_counter))
    dev = _device(l2=True)
    dev.on_flush = clock.advance(1000.0)  # a flush "takes" 1000 s
    dev.on_sync = clock.advance(0.25)
    call = clock.advance(1.0)

    cfg = _fast(warmup_s=2.0, min_reps=3, max_reps=3, max_time_s=timing.MAX_TIME_S, flush_l2=True)
    t = measure(call, dev, cfg)
    # sample = call + trailing sync = 1.0 + 0.25; the leading sync and the flush are outside
    assert t.samples_s == [1.25, 1.25, 1.25]
    assert t.first_call_s == 1.25
    # warm-up: one flush + call + sync = 1001.25 >= 2.0, so exactly one warm-up call
    assert (t.warmup_reps, t.warmup_s) == (1, 1001.25)
    # sampling wall time includes everything: 3 x (flush + sync + call + sync) = 3 x 1001.5
    assert t.sampling_wall_s == 3 * 1001.5


# --- (c) stopping rules --------------------------------------------------------------------


def test_min_reps_is_respected_for_fast_calls() -> None:
    dev = _device(l2=False)
    t = measure(_recorder(dev), dev, _fast(min_reps=50, max_reps=10_000, min_time_s=1e-4))
    assert t.summary.n >= 50
    assert len(t.samples_s) == t.summary.n


def test_min_reps_alone_stops_exactly_there_when_min_time_is_zero() -> None:
    dev = _device(l2=False)
    t = measure(_recorder(dev), dev, _fast(min_reps=37, max_reps=10_000, min_time_s=0.0))
    assert t.summary.n == 37


def test_max_reps_caps_the_samples_exactly() -> None:
    dev = _device(l2=False)
    t = measure(_recorder(dev), dev, _fast(min_reps=1, max_reps=7, min_time_s=100.0, max_time_s=30.0))
    assert t.summary.n == 7
    assert len(t.samples_s) == 7


def test_samples_add_up_to_min_time() -> None:
    dev = _device(l2=False)
    cfg = _fast(min_reps=1, max_reps=100_000, min_time_s=0.05, max_time_s=30.0)
    t = measure(_recorder(dev, sleep_s=0.001), dev, cfg)
    assert sum(t.samples_s) >= 0.05
    # it stops once there: dropping the last sample leaves it short of min_time_s
    assert math.fsum(t.samples_s[:-1]) < 0.05


def test_max_time_stops_a_slow_function() -> None:
    dev = _device(l2=False)
    cfg = _fast(min_reps=1000, max_reps=10_000, min_time_s=1.0, max_time_s=0.1)
    t = measure(_recorder(dev, sleep_s=0.02), dev, cfg)
    # each call sleeps >= 20 ms, so 0.1 s of wall time is used up after at most 5 samples
    assert 1 <= t.summary.n <= 10
    assert t.sampling_wall_s >= 0.1  # nothing else could have stopped it
    assert t.sampling_wall_s < 1.0


@pytest.mark.parametrize(
    ("cfg_kw", "n_expected"),
    [
        # each call takes exactly 1 s of fake time; syncs take none
        ({"min_reps": 1, "max_reps": 100, "min_time_s": 2.5}, 3),  # 1 + 1 + 1 >= 2.5
        ({"min_reps": 5, "max_reps": 100, "min_time_s": 2.5}, 5),  # min_reps outlasts min_time_s
        ({"min_reps": 1, "max_reps": 2, "min_time_s": 2.5}, 2),  # max_reps wins
        ({"min_reps": 100, "max_reps": 100, "min_time_s": 0.0, "max_time_s": 3.5}, 4),  # 4 s >= 3.5 s
    ],
)
def test_stopping_rules_with_a_scripted_clock(
    monkeypatch: pytest.MonkeyPatch, cfg_kw: dict[str, float], n_expected: int
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(timing, "time", SimpleNamespace(perf_counter=clock.perf_counter))
    dev = _device(l2=False)
    t = measure(clock.advance(1.0), dev, _fast(**{"max_time_s": timing.MAX_TIME_S, **cfg_kw}))
    assert t.samples_s == [1.0] * n_expected


# --- (d) time-based warm-up ----------------------------------------------------------------


def test_warmup_runs_for_at_least_warmup_s() -> None:
    dev = _device(l2=False)
    t = measure(_recorder(dev), dev, _fast(warmup_s=0.02))
    assert t.warmup_s >= 0.02
    assert t.warmup_reps >= 1
    assert len(_call_indices(dev.events)) == 1 + t.warmup_reps + t.summary.n


def test_zero_warmup_makes_no_warmup_calls() -> None:
    dev = _device(l2=False)
    t = measure(_recorder(dev), dev, _fast(warmup_s=0.0, min_reps=4, max_reps=4))
    assert t.warmup_reps == 0
    assert len(_call_indices(dev.events)) == 1 + 4  # the first call and the samples, nothing else


# --- (e) the first call is reported apart ---------------------------------------------------


def test_slow_first_call_is_excluded_from_samples() -> None:
    calls = []

    def fn() -> None:
        calls.append(1)
        if len(calls) == 1:
            time.sleep(0.2)

    t = measure(fn, _device(l2=False), _fast(warmup_s=0.01, min_reps=10, max_reps=10))
    assert t.first_call_s >= 0.2
    assert max(t.samples_s) < 0.1


# --- (f) durations are real ----------------------------------------------------------------


def test_measured_durations_cover_the_work() -> None:
    dev = _device(l2=False)
    t = measure(_recorder(dev, sleep_s=0.002), dev, _fast(min_reps=5, max_reps=5))
    assert t.summary.median >= 0.002
    assert min(t.samples_s) >= 0.002  # time.sleep never returns early
    assert t.summary.median < 1.0


# --- (g) what the Timing reports ----------------------------------------------------------


def test_cpu_timer_and_summary_consistency() -> None:
    dev = _device(l2=False)
    cfg = _fast(min_reps=8, max_reps=8, cv_threshold=1e9)
    t = measure(_recorder(dev), dev, cfg)
    assert isinstance(t, Timing)
    assert t.timer == "perf_counter"
    assert t.summary == summarize(t.samples_s)
    assert all(s >= 0 for s in t.samples_s)
    assert t.unstable == is_unstable(t.summary, cfg.cv_threshold)
    assert t.unstable is False  # n = 8 gives a finite CV, far below 1e9


def test_real_cpu_device_reports_perf_counter_and_no_flush() -> None:
    from bench.device.base import cpu_device

    t = measure(lambda: None, cpu_device(), _fast(flush_l2=True))
    assert t.timer == "perf_counter"
    assert t.l2_flushed is False  # a CPU has nothing to flush


@pytest.mark.parametrize("threshold", [1e-12, 0.05, 1e9])
def test_unstable_follows_is_unstable(threshold: float) -> None:
    dev = _device(l2=False)
    cfg = _fast(min_reps=6, max_reps=6, cv_threshold=threshold)
    t = measure(_recorder(dev), dev, cfg)
    assert t.unstable == is_unstable(t.summary, threshold)


def test_single_sample_is_unstable() -> None:
    dev = _device(l2=False)
    t = measure(_recorder(dev), dev, _fast(min_reps=1, max_reps=1, cv_threshold=1e9))
    assert t.summary.n == 1
    assert t.unstable  # one sample: the spread cannot be judged


# --- (h) TimerConfig validation ------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_reps": 11, "max_reps": 10},
        {"warmup_s": -0.1},
        {"min_time_s": -1.0},
        {"min_reps": 0},
        {"max_time_s": 0.0},
        {"cv_threshold": 0.0},
        {"warmup": 1.0},  # unknown key (a typo of warmup_s)
    ],
)
def test_timer_config_rejects_bad_values(kwargs: dict[str, float]) -> None:
    with pytest.raises(pydantic.ValidationError):
        TimerConfig(**kwargs)


def test_timer_config_accepts_equal_min_and_max_reps_and_is_frozen() -> None:
    cfg = TimerConfig(min_reps=5, max_reps=5)
    assert (cfg.min_reps, cfg.max_reps) == (5, 5)
    with pytest.raises(pydantic.ValidationError):
        cfg.min_reps = 6  # type: ignore[misc]


# --- when the L2 flush is worth doing ------------------------------------------------------------


def test_flush_only_where_the_working_set_could_fit_in_l2() -> None:
    from bench.measure.timing import wants_flush

    dev = RecordingDevice(torch_device=torch.device("cpu"), name="rec")
    dev.l2_cache_bytes = 50 * 2**20  # an H100's 50 MiB
    on = TimerConfig(flush_l2=True)
    assert wants_flush(dev, on, working_set_bytes=None)  # unknown: flush, to be safe
    assert wants_flush(dev, on, working_set_bytes=100 * 2**20)  # 2 x L2: could partly survive
    assert not wants_flush(dev, on, working_set_bytes=100 * 2**20 + 1)  # evicts itself
    assert not wants_flush(dev, TimerConfig(flush_l2=False), working_set_bytes=1)


def test_cuda_timer_flushes_outside_events_and_syncs_before_reading_them(monkeypatch):
    from bench.measure.timing import measure
    from tests.measure.test_timing import _device, _fast, _recorder

    dev = _device(l2=True)
    pending = {"events": False}

    class FakeEvent:
        def __init__(self, enable_timing: bool = False) -> None:
            pass

        def record(self, stream=None) -> None:
            pending["events"] = True
            dev.events.append("event")

        def elapsed_time(self, end) -> float:
            assert not pending["events"], "event read before the device was synchronised"
            return 2.0  # ms

    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    monkeypatch.setattr(torch.cuda, "_sleep", lambda cycles: None, raising=False)
    dev.kind = "cuda"
    dev.stream = lambda: None
    dev.on_sync = lambda: pending.update(events=False)
    t = measure(_recorder(dev), dev, _fast(min_reps=4, max_reps=4, flush_l2=True))
    assert t.timer == "cuda_event" and t.samples_s == [0.002] * 4
    sampled = [i for i, e in enumerate(dev.events) if e == "call"][-4:]
    for i in sampled:
        assert dev.events[i - 2 : i + 2] == ["flush", "event", "call", "event"]


# --- ranks in lockstep ----------------------------------------------------------------------


def test_agree_makes_this_rank_follow_a_rank_that_wants_more() -> None:
    """With `agree`, a rank keeps calling while another rank still wants calls (collectives)."""
    dev = _device(l2=False)
    wishes: list[int] = []

    def agree(n: int) -> int:
        wishes.append(n)
        other = 1 if len(wishes) <= 40 else 0  # the other rank wants one more call for its first 40 decisions
        return max(n, other)

    t = measure(_recorder(dev), dev, _fast(min_reps=5, max_reps=1000), agree=agree)
    calls = len(_call_indices(dev.events))
    assert calls == 1 + t.warmup_reps + t.summary.n  # the first call, the warm-up, the samples: nothing else
    assert t.warmup_reps + t.summary.n >= 39  # this rank alone would have stopped after 5 samples
    assert wishes[-1] == 0  # it stopped only when both wanted to stop


def test_this_rank_makes_the_calls_agree_returns_not_the_ones_it_wished() -> None:
    """An `agree` that doubles every wish: the rank takes 6 samples where alone it takes its max_reps, 5."""
    alone = _device(l2=False)
    t_alone = measure(_recorder(alone), alone, _fast(min_reps=5, max_reps=5))
    assert t_alone.summary.n == 5

    dev = _device(l2=False)
    wishes: list[int] = []

    def agree(n: int) -> int:
        wishes.append(n)
        return 2 * n  # another rank that wants twice what this one does; 0 (stop) stays 0

    t = measure(_recorder(dev), dev, _fast(min_reps=5, max_reps=5), agree=agree)
    # on the host a wish is one call at a time: 1, 1, 1 (granted as 2, 2, 2), then 0 once 6 >= max_reps
    assert wishes == [0, 1, 1, 1, 0, 0]  # the warm-up's stop, the sampling's, the window's (already long enough)
    assert t.warmup_reps == 0 and t.summary.n == 6 and len(t.samples_s) == 6
    assert len(_call_indices(dev.events)) == 1 + 6  # the first call and the samples: what agree granted


# --- bounds: a timer that would never end is refused ----------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"warmup_s": 1e308}, "warmup_s\n  Input should be less than or equal to 3600"),
        ({"min_time_s": 1e308}, "min_time_s\n  Input should be less than or equal to 3600"),
        ({"max_time_s": 1e308}, "max_time_s\n  Input should be less than or equal to 3600"),
        ({"warmup_s": float("inf")}, "warmup_s\n  Input should be a finite number"),
        ({"cv_threshold": float("inf")}, "cv_threshold\n  Input should be a finite number"),
        ({"max_reps": 2**63 - 1}, "max_reps\n  Input should be less than or equal to 10000000"),
        ({"min_reps": 2**63 - 1, "max_reps": 2**63 - 1}, "min_reps\n  Input should be less than or equal to 10000000"),
        ({"min_reps": True}, "min_reps\n  Input should be a number, not true or false"),
        ({"max_time_s": False}, "max_time_s\n  Input should be a number, not true or false"),
    ],
)
def test_timer_config_bounds_each_setting(kwargs, message) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        TimerConfig(**kwargs)


def test_timer_config_accepts_its_bounds() -> None:
    from bench.measure.timing import MAX_REPS, MAX_TIME_S

    assert (MAX_TIME_S, MAX_REPS) == (3600.0, 10_000_000)
    cfg = TimerConfig(warmup_s=MAX_TIME_S, min_time_s=MAX_TIME_S, max_time_s=MAX_TIME_S, min_reps=MAX_REPS,
                      max_reps=MAX_REPS, flush_l2=True)  # fmt: skip
    assert cfg.max_reps == MAX_REPS and cfg.warmup_s == 3600.0


def test_a_suite_timer_of_1e308_is_one_line() -> None:
    from bench.measure.suites import SuiteError, parse_suite

    with pytest.raises(SuiteError) as e:
        parse_suite('[timer]\nwarmup_s = 1e308\n[[bench]]\nworkload = "copy"\n', "t", "t.toml")
    assert str(e.value) == "suite t.toml: timer.warmup_s: Input should be less than or equal to 3600"


def test_a_timing_short_of_its_minimum_samples_is_unstable_whatever_its_cv():
    """Calls slower than predicted: the timer stops at max_time_s with 7 of 20 samples. Steady as they
    are (CV 0), seven calls are no figure to pass unflagged."""
    from bench.measure.timing import Timing

    steady = [3.49] * 7
    rest = {"first_call_s": 5.0, "warmup_s": 3.5, "warmup_reps": 1, "sampling_wall_s": 24.4,
            "timer": "perf_counter", "l2_flushed": False, "window_calls": 7}  # fmt: skip
    assert Timing.of(steady, 0.05, min_reps=20, **rest).unstable is True
    assert Timing.of(steady, 0.05, min_reps=7, **rest).unstable is False
    assert Timing.of(steady, 0.05, **rest).unstable is False  # min_reps defaults to 1
