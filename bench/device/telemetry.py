"""Telemetry: what the card drew and how it behaved, read in the same window as the time.

A `Telemetry` source reads one `Sample` at a time: power, the energy counter, utilisation,
clocks, temperature, memory used and clock-event (throttle) reasons. `NvmlTelemetry` reads a GPU
through bench.device.nvml, where NVML's errors become reasons; `NullTelemetry` stands where there is
nothing to read and carries the reason. A `Sampler` reads a source on a background thread
between `start()` and `stop()` (the timer calls them at the edges of its timed window) and reads
the energy counters exactly at those edges; bench.device.energy turns the result into figures.

Reading only: nothing here sets clocks, power limits or modes.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bench.device import nvml
from bench.device.rapl import HostEnergy

if TYPE_CHECKING:  # the device classes import torch; the CLI reads this module's defaults without it
    from bench.device.base import Device

# Power and the energy counter are read this often: well under NVML's update period (about 100 ms,
# faster on recent GPUs). Clocks, temperature, utilisation, memory and clock-event reasons change
# more slowly (utilisation is itself a driver average) and are read every STATE_INTERVAL_S, so
# the sampler thread holds the interpreter lock as little as it can.
DEFAULT_INTERVAL_S = 0.02
STATE_INTERVAL_S = 0.1
# The energy counter and the power readings update every few tens of ms: a window this long
# holds many updates, so their granularity is a small part of the energy.
DEFAULT_MIN_WINDOW_S = 1.0
# ... and at least this many periods of the energy counter, as measured in the idle baseline.
MIN_WINDOW_COUNTER_PERIODS = 20
JOIN_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Sample:
    """One read of the card; None where that value is not available."""

    t_s: float  # host time of the read (time.perf_counter)
    power_w: float | None = None
    energy_j: float | None = None  # the card's cumulative energy counter
    gpu_util_pct: float | None = None
    mem_util_pct: float | None = None
    sm_clock_mhz: float | None = None
    mem_clock_mhz: float | None = None
    temperature_c: float | None = None
    mem_used_bytes: int | None = None
    clock_event_reasons: int | None = None


SAMPLE_FIELDS = tuple(Sample.__dataclass_fields__)


class Telemetry(ABC):
    """A source of samples, an energy counter, the power limit and the card's health counters."""

    source: str = "none"
    reason: str | None = None  # why there is no telemetry at all
    power_reading: str | None = None  # which power value samples hold
    scope: str | None = None  # what the figures cover (the whole GPU, also under MIG)
    min_window_s: float = 0.0  # the shortest window whose energy can be trusted

    @property
    def active(self) -> bool:
        return self.source != "none"

    @property
    def problem(self) -> str | None:
        """Why readings are missing: no telemetry at all, or readings that began to fail."""
        errors = getattr(self, "errors", None)
        return self.reason or ("; ".join(f"{k}: {v}" for k, v in errors.items()) if errors else None)

    @abstractmethod
    def sample(self, t_s: float, state: bool = True) -> Sample:
        """Read power and energy now, and with `state` everything else; `t_s` is the host time."""

    def energy_j(self) -> tuple[float | None, str | None]:
        """The cumulative energy counter in joules, or None and why."""
        return None, self.reason

    def power_limit_w(self) -> float | None:
        return None

    def health(self) -> dict[str, Any]:
        """ECC and memory-repair counters (see bench.device.nvml.health); empty when unknown."""
        return {}

    def describe(self) -> dict[str, Any]:
        """What the run header says about its telemetry."""
        return {
            "telemetry_source": self.source,
            "telemetry_reason": self.reason,
            "power_reading": self.power_reading,
            "telemetry_scope": self.scope,
            "min_energy_window_s": self.min_window_s,
        }


class NullTelemetry(Telemetry):
    """No telemetry here; every figure that needs it is null with `reason`."""

    def __init__(self, reason: str):
        self.reason = reason

    def sample(self, t_s: float, state: bool = True) -> Sample:
        return Sample(t_s)


def _instant_power_w(handle: Any) -> float:
    P = nvml.pynvml
    value = P.nvmlDeviceGetFieldValues(handle, [P.NVML_FI_DEV_POWER_INSTANT])[0]
    if value.nvmlReturn != P.NVML_SUCCESS:
        raise P.NVMLError(value.nvmlReturn)
    return value.value.uiVal / 1000.0


class NvmlTelemetry(Telemetry):
    """One GPU through NVML. Each reading is tried once up front; unsupported ones are left out
    (listed in `missing`), so sampling never retries a call that cannot work."""

    source = "nvml"

    def __init__(self, handle: Any, min_window_s: float = DEFAULT_MIN_WINDOW_S, mig: bool = False):
        P = nvml.pynvml
        self.handle = handle
        self.min_window_s = min_window_s
        self.scope = "whole GPU (shared by every MIG slice on it)" if mig else "whole GPU"
        self.missing: dict[str, str] = {}
        self.errors: dict[str, str] = {}  # readings that worked at first and later failed
        h = handle
        readers: dict[str, Callable[[], dict[str, Any]]] = {
            "energy": lambda: {"energy_j": P.nvmlDeviceGetTotalEnergyConsumption(h) / 1000.0},
            "utilization": lambda: _utilization(P.nvmlDeviceGetUtilizationRates(h)),
            "sm_clock": lambda: {"sm_clock_mhz": P.nvmlDeviceGetClockInfo(h, P.NVML_CLOCK_SM)},
            "mem_clock": lambda: {"mem_clock_mhz": P.nvmlDeviceGetClockInfo(h, P.NVML_CLOCK_MEM)},
            "temperature": lambda: {"temperature_c": P.nvmlDeviceGetTemperature(h, P.NVML_TEMPERATURE_GPU)},
            "memory": lambda: {"mem_used_bytes": int(P.nvmlDeviceGetMemoryInfo(h).used)},
            "clock_events": lambda: {"clock_event_reasons": int(P.nvmlDeviceGetCurrentClocksEventReasons(h))},
        }
        # Power first: the instant reading where the driver has it, else nvmlDeviceGetPowerUsage,
        # which on Ampere and newer (except A100) is a 1 s average and lags the load.
        power_readers = (
            ("instant (NVML_FI_DEV_POWER_INSTANT)", lambda: {"power_w": _instant_power_w(h)}),
            ("nvmlDeviceGetPowerUsage (a 1 s average on Ampere and newer, except A100)", lambda: {
                "power_w": P.nvmlDeviceGetPowerUsage(h) / 1000.0}),
        )  # fmt: skip
        self._readers: dict[str, Callable[[], dict[str, Any]]] = {}
        for label, reader in power_readers:
            _, err = nvml._call(reader, what="power")
            if err is None:
                self.power_reading = label
                self._readers["power"] = reader
                break
            self.missing[f"power {label.split(' ')[0]}"] = err
        for name, reader in readers.items():
            _, err = nvml._call(reader, what=name)
            if err is None:
                self._readers[name] = reader
            else:
                self.missing[name] = err
        if "power" not in self._readers and "energy" not in self._readers:
            # nothing to measure energy with (a vGPU, a locked-down container): no thread, no
            # lengthened windows; health counters may still be readable
            self.reason = "NVML reads neither power nor energy on this GPU: " + "; ".join(
                f"{k}: {v}" for k, v in self.missing.items() if k.startswith(("power", "energy"))
            )
            self.min_window_s = 0.0

    @property
    def active(self) -> bool:
        return "power" in self._readers or "energy" in self._readers

    def sample(self, t_s: float, state: bool = True) -> Sample:
        values: dict[str, Any] = {}
        for name, reader in self._readers.items():
            if not state and name not in ("power", "energy"):
                continue
            got, err = nvml._call(reader, what=name)
            if err is None:
                values.update(got)
            else:
                self.errors.setdefault(name, err)
        return Sample(t_s, **values)

    def energy_j(self) -> tuple[float | None, str | None]:
        if "energy" not in self._readers:
            return None, self.missing.get("energy")
        got, err = nvml._call(self._readers["energy"], what="energy")
        return (got["energy_j"], None) if err is None else (None, err)

    def power_limit_w(self) -> float | None:
        P = nvml.pynvml
        watts, _ = nvml._call(lambda: P.nvmlDeviceGetEnforcedPowerLimit(self.handle) / 1000.0, what="power limit")
        return watts

    def health(self) -> dict[str, Any]:
        return nvml.health(self.handle)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "telemetry_missing": self.missing or None}


def _utilization(rates: Any) -> dict[str, Any]:
    return {"gpu_util_pct": rates.gpu, "mem_util_pct": rates.memory}


def for_device(device: Device, min_window_s: float = DEFAULT_MIN_WINDOW_S) -> Telemetry:
    """The telemetry source for `device`: NVML for a GPU it can see, else a null one with why."""
    from bench.device.base import CudaDevice

    if not isinstance(device, CudaDevice):
        return NullTelemetry(f"the device is the {device.kind.upper()}: no NVML")
    if device.uuid is None:
        return NullTelemetry("torch reports no uuid for the GPU, so NVML cannot be matched to it")
    handle, reason = nvml.handle_for_uuid(device.uuid)
    if handle is None:
        return NullTelemetry(reason or "NVML does not know the GPU")
    handle, mig = nvml.whole_gpu(handle)
    return NvmlTelemetry(handle, min_window_s=min_window_s, mig=mig)


@dataclass
class Window:
    """What a sampler saw: the window's edges, the samples around and inside it, the counters."""

    t0_s: float
    t1_s: float
    samples: list[Sample]  # the first is read just before t0_s, the last just after t1_s
    counter_start_j: float | None
    counter_end_j: float | None
    counter_reason: str | None
    source: str
    reason: str | None  # why there is no telemetry (NullTelemetry) or why readings stopped
    power_reading: str | None
    interval_s: float
    power_limit_w: float | None = None
    host_start: list[int] | None = None
    host_end: list[int] | None = None
    host_joules: float | None = None
    host_reason: str | None = None

    @property
    def duration_s(self) -> float:
        return self.t1_s - self.t0_s

    def inside(self) -> list[Sample]:
        """The samples read inside the window."""
        return [s for s in self.samples if self.t0_s <= s.t_s <= self.t1_s]


@dataclass
class Sampler:
    """Reads `telemetry` every `interval_s` on a thread between start() and stop().

    `stop()` returns the Window; the counters (the card's and the host's) are read exactly at the
    edges. With nothing to read, no thread is started.
    """

    telemetry: Telemetry
    interval_s: float = DEFAULT_INTERVAL_S
    host: HostEnergy | None = None
    clock: Callable[[], float] = time.perf_counter
    window: Window | None = None
    _samples: list[Sample] = field(default_factory=list)
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _ticks: int = 0

    @property
    def min_window_s(self) -> float:
        return self.telemetry.min_window_s if self.telemetry.active else 0.0

    def _read_counter(self) -> tuple[float, float | None, str | None]:
        """(time, counter, reason): the time is the middle of the read, so the edge is exact to
        half a read (the sampler thread may hold the interpreter for part of it)."""
        before = self.clock()
        joules, reason = self.telemetry.energy_j()
        return (before + self.clock()) / 2, joules, reason

    def start(self) -> None:
        t = self.telemetry
        self._stop.clear()
        self._loop_error: str | None = None
        self._samples = [t.sample(self.clock())]  # read just before the window opens
        self._ticks = 0
        self._power_limit = t.power_limit_w()
        if t.active:
            self._thread = threading.Thread(target=self._loop, name="tokenbench-telemetry", daemon=True)
            self._thread.start()
        try:
            self._host_start = self.host.read() if self.host else None
            self._t0, self._counter_start, self._counter_reason = self._read_counter()
        except BaseException:
            self._join()
            raise

    def tick(self) -> None:
        """Read one sample now (the thread does this every `interval_s`); the card's state only
        every STATE_INTERVAL_S, power and energy every time."""
        every = max(1, round(STATE_INTERVAL_S / self.interval_s))
        self._samples.append(self.telemetry.sample(self.clock(), state=self._ticks % every == 0))
        self._ticks += 1

    def _loop(self) -> None:
        try:
            while not self._stop.wait(self.interval_s):
                self.tick()
        except Exception as e:  # the window's figures become null with this, the timing is kept
            self._loop_error = f"sampler thread stopped: {type(e).__name__}: {e}"

    def _join(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=JOIN_TIMEOUT_S)
            if self._thread.is_alive():  # an NVML call hung (a GPU falling off the bus)
                self._loop_error = f"sampler thread did not stop within {JOIN_TIMEOUT_S:g} s"
            self._thread = None

    def stop(self) -> Window:
        t = self.telemetry
        t1, counter_end, end_reason = self._read_counter()
        host_end = self.host.read() if self.host else None
        self._join()
        if self._loop_error is None:
            self.tick()  # read just after the window closes
        host = self.host
        self.window = Window(
            t0_s=self._t0,
            t1_s=t1,
            samples=self._samples,
            counter_start_j=self._counter_start,
            counter_end_j=counter_end,
            counter_reason=self._counter_reason or end_reason,
            source=t.source,
            reason=self._loop_error or t.problem,
            power_reading=t.power_reading,
            interval_s=self.interval_s,
            power_limit_w=self._power_limit,
            host_start=self._host_start,
            host_end=host_end,
            host_joules=host.joules_between(self._host_start, host_end) if host else None,
            host_reason=(host.reason if host else "host energy not read")
            if host is None or not host.available
            else None,
        )
        return self.window


def idle_window(sampler: Sampler, seconds: float, sleep: Callable[[float], None] = time.sleep) -> Window:
    """Sample the device at rest for `seconds` (the idle baseline, before any workload)."""
    sampler.start()
    try:
        sleep(seconds)
    finally:
        window = sampler.stop()
    return window


# Health counters whose growth during a run means a memory fault the card could not hide.
HEALTH_FAIL = ("ecc_uncorrected", "retired_pages_dbe", "remapped_rows_uncorrectable")
# ... and whose growth means faults it corrected: a warning, worth watching on a new node.
HEALTH_WARN = ("ecc_corrected", "retired_pages_sbe", "remapped_rows_correctable")
HEALTH_FLAGS = ("retired_pages_pending", "remap_pending", "remap_failed")


def health_change(before: dict[str, Any], after: dict[str, Any]) -> tuple[str | None, str | None]:
    """('ok' | 'warn' | 'fail', what changed) between two health reads; (None, why) when unknown."""
    known = [
        k for k in HEALTH_FAIL + HEALTH_WARN + HEALTH_FLAGS if before.get(k) is not None and after.get(k) is not None
    ]
    if not known:
        return None, "no ECC or memory-repair counters readable"
    failed: list[str] = []
    warned: list[str] = []
    for key in HEALTH_FAIL + HEALTH_WARN:
        if key in known and after[key] > before[key]:
            (failed if key in HEALTH_FAIL else warned).append(f"{key} +{after[key] - before[key]}")
    for key in HEALTH_FLAGS:
        if key in known and after[key] and not before[key]:
            failed.append(f"{key} became true")
    if failed:
        return "fail", "; ".join(failed + warned)
    if warned:
        return "warn", "; ".join(warned)
    return "ok", None
