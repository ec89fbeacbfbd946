"""A scripted stand-in for the `pynvml` module, autospec'd against the real one.

Every function has the real signature (a call with the wrong arguments raises TypeError, as it
would against the real module), every constant and exception class is the real one, and every
function not scripted raises NVMLError_NotSupported. A `ScriptedGpu` answers the scripted calls
from functions of time, read from the clock the test controls, so a power trace is replayed
exactly and the energy counter is its exact integral.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pynvml

HANDLE = "scripted-gpu-handle"


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, t: float = 0.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


@dataclass
class ScriptedGpu:
    """One GPU's readings as functions of time t (seconds on `clock`); by default a steady 300 W,
    with `energy_mj` its integral (a test that scripts another power scripts the counter too)."""

    clock: Callable[[], float]
    power_w: Callable[[float], float] = lambda t: 300.0
    energy_mj: Callable[[float], float] = lambda t: 5_000_000 + 300_000 * t
    reasons: Callable[[float], int] = lambda t: 0
    sm_clock_mhz: Callable[[float], int] = lambda t: 1980
    mem_clock_mhz: Callable[[float], int] = lambda t: 2619
    temperature_c: Callable[[float], int] = lambda t: 45
    mem_used_bytes: Callable[[float], int] = lambda t: 1 << 30
    util: Callable[[float], tuple[int, int]] = lambda t: (100, 40)
    power_limit_mw: int = 700_000
    instant_power: bool = True  # NVML_FI_DEV_POWER_INSTANT supported
    counter: bool = True  # nvmlDeviceGetTotalEnergyConsumption supported
    health: dict[str, Any] = field(
        default_factory=lambda: {"ecc_corrected": 0, "ecc_uncorrected": 0, "remapped": (0, 0, 0, 0)}
    )
    fail_after_s: float | None = None  # every call raises NVMLError_GpuIsLost from this time on


def _not_supported(*args: Any, **kwargs: Any) -> Any:
    raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)


def scripted_pynvml(gpu: ScriptedGpu | None, init_error: int | None = None) -> Any:
    """The stand-in module. `gpu` None: no GPU; `init_error`: nvmlInit raises this NVML code."""
    fake = mock.create_autospec(pynvml)
    for name, value in vars(pynvml).items():
        if name.startswith("nvml") and inspect.isfunction(value):
            getattr(fake, name).side_effect = _not_supported
        elif not inspect.isfunction(value) and not inspect.ismodule(value):
            setattr(fake, name, value)  # constants, structs and the real exception classes

    def script(name: str, fn: Callable[..., Any]) -> None:
        def guarded(*args: Any) -> Any:
            if gpu is not None and gpu.fail_after_s is not None and gpu.clock() >= gpu.fail_after_s:
                raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)
            return fn(*args)

        getattr(fake, name).side_effect = guarded

    if init_error is not None:
        fake.nvmlInit.side_effect = pynvml.NVMLError(init_error)
        return fake
    fake.nvmlInit.side_effect = None
    fake.nvmlInit.return_value = None
    if gpu is None:
        return fake
    now = gpu.clock

    def field_values(handle: Any, ids: list[int]) -> list[Any]:
        if not gpu.instant_power:
            value = SimpleNamespace(nvmlReturn=pynvml.NVML_ERROR_NOT_SUPPORTED, value=SimpleNamespace(uiVal=0))
        else:
            value = SimpleNamespace(
                nvmlReturn=pynvml.NVML_SUCCESS, value=SimpleNamespace(uiVal=round(1000 * gpu.power_w(now())))
            )
        return [value for _ in ids]

    def energy(handle: Any) -> int:
        if not gpu.counter:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return round(gpu.energy_mj(now()))

    def ecc(handle: Any, error_type: int, counter_type: int) -> int:
        key = "ecc_corrected" if error_type == pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED else "ecc_uncorrected"
        return gpu.health[key]

    clocks = {pynvml.NVML_CLOCK_SM: gpu.sm_clock_mhz, pynvml.NVML_CLOCK_MEM: gpu.mem_clock_mhz}
    script("nvmlDeviceGetHandleByUUID", lambda uuid: HANDLE)
    script("nvmlDeviceIsMigDeviceHandle", lambda h: 0)
    script("nvmlDeviceGetFieldValues", field_values)
    script("nvmlDeviceGetPowerUsage", lambda h: round(1000 * gpu.power_w(now())))
    script("nvmlDeviceGetTotalEnergyConsumption", energy)
    script(
        "nvmlDeviceGetUtilizationRates", lambda h: SimpleNamespace(gpu=gpu.util(now())[0], memory=gpu.util(now())[1])
    )
    script("nvmlDeviceGetClockInfo", lambda h, kind: clocks[kind](now()))
    script("nvmlDeviceGetTemperature", lambda h, sensor: gpu.temperature_c(now()))
    script("nvmlDeviceGetMemoryInfo", lambda h, version=None: SimpleNamespace(used=gpu.mem_used_bytes(now())))
    script("nvmlDeviceGetCurrentClocksEventReasons", lambda h: gpu.reasons(now()))
    script("nvmlDeviceGetEnforcedPowerLimit", lambda h: gpu.power_limit_mw)
    script("nvmlDeviceGetEccMode", lambda h: [1, 1])
    script("nvmlDeviceGetTotalEccErrors", ecc)
    script("nvmlDeviceGetRemappedRows", lambda h: gpu.health["remapped"])
    return fake
