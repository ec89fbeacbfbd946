"""NVML access for provenance: card identity and state as found, never changed.

Every NVML call goes through `_call`, which maps the vendor's errors (missing library, driver
mismatch, no permission, not supported) to None plus a reason, so that a machine without NVML
gives null fields with reasons instead of a crash. Nothing here sets clocks, limits or modes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

try:  # nvidia-ml-py provides the module `pynvml`
    import pynvml
except ImportError:  # pragma: no cover - it is a declared dependency
    pynvml = None  # type: ignore[assignment]  # None: init_error() gives the reason, _call returns it


class NvmlUnavailable(Exception):
    """NVML cannot be used on this machine; the message says why."""


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


@functools.lru_cache(maxsize=1)
def init_error() -> str | None:
    """Initialise NVML once; None when it works, else the reason it does not."""
    if pynvml is None:
        return "the pynvml module (nvidia-ml-py) is not installed"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as e:
        return f"NVML init failed: {e}"
    except OSError as e:  # pragma: no cover - library load failures on odd systems
        return f"NVML library could not be loaded: {e}"
    return None


def _call(fn: Callable[..., Any], *args: Any, what: str | None = None) -> tuple[Any, str | None]:
    """Run one NVML query: (value, None) or (None, reason naming `what` was asked)."""
    err = init_error()
    if err:
        return None, err
    try:
        return _text(fn(*args)), None
    except pynvml.NVMLError as e:
        return None, f"{what or getattr(fn, '__name__', 'nvml')}: {e}"


def gpu_names() -> list[str]:
    """Names of every GPU NVML sees (empty without NVML)."""
    count, err = _call(lambda: pynvml.nvmlDeviceGetCount())
    if err or not count:
        return []
    names = []
    for i in range(count):
        handle, err = _call(pynvml.nvmlDeviceGetHandleByIndex, i)
        if handle is not None:
            name, _ = _call(pynvml.nvmlDeviceGetName, handle)
            names.append(name or f"GPU {i}")
    return names


def driver_version() -> tuple[str | None, str | None]:
    """(driver version, reason when unknown)."""
    return _call(lambda: pynvml.nvmlSystemGetDriverVersion())


def handle_for_uuid(uuid: str) -> tuple[Any, str | None]:
    """NVML handle of the GPU with this UUID (torch and NVML index GPUs differently).

    Under MIG, CUDA reports the slice's UUID, which NVML knows as "MIG-..." rather than "GPU-...".
    """
    if pynvml is None:
        return None, init_error()
    bare = uuid.split("-", 1)[1] if uuid.startswith(("GPU-", "MIG-")) else uuid
    reason = None
    for prefix in ("GPU-", "MIG-"):
        handle, reason = _call(pynvml.nvmlDeviceGetHandleByUUID, prefix + bare, what="nvmlDeviceGetHandleByUUID")
        if handle is not None:
            return handle, None
    return None, reason


def card_state(handle: Any) -> dict[str, Any]:
    """The card's identity and state as found: flat fields, None where unreadable.

    Fields whose read failed are listed with their reason under `nvml_missing`.
    """
    P = pynvml
    queries: dict[str, Callable[[], Any]] = {
        "gpu_uuid": lambda: P.nvmlDeviceGetUUID(handle),
        "gpu_pci_bus_id": lambda: _text(P.nvmlDeviceGetPciInfo(handle).busId),
        "gpu_serial": lambda: P.nvmlDeviceGetSerial(handle),
        "gpu_vbios": lambda: P.nvmlDeviceGetVbiosVersion(handle),
        "gpu_mem_total_bytes": lambda: int(P.nvmlDeviceGetMemoryInfo(handle).total),
        "gpu_power_limit_w": lambda: P.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000.0,
        "gpu_power_default_limit_w": lambda: P.nvmlDeviceGetPowerManagementDefaultLimit(handle) / 1000.0,
        "gpu_sm_clock_mhz": lambda: P.nvmlDeviceGetClockInfo(handle, P.NVML_CLOCK_SM),
        "gpu_mem_clock_mhz": lambda: P.nvmlDeviceGetClockInfo(handle, P.NVML_CLOCK_MEM),
        "gpu_sm_clock_max_mhz": lambda: P.nvmlDeviceGetMaxClockInfo(handle, P.NVML_CLOCK_SM),
        "gpu_mem_clock_max_mhz": lambda: P.nvmlDeviceGetMaxClockInfo(handle, P.NVML_CLOCK_MEM),
        "gpu_temperature_c": lambda: P.nvmlDeviceGetTemperature(handle, P.NVML_TEMPERATURE_GPU),
        "gpu_power_w": lambda: P.nvmlDeviceGetPowerUsage(handle) / 1000.0,
        "gpu_persistence_mode": lambda: bool(P.nvmlDeviceGetPersistenceMode(handle)),
        "gpu_compute_mode": lambda: int(P.nvmlDeviceGetComputeMode(handle)),
        "gpu_mig_mode": lambda: int(P.nvmlDeviceGetMigMode(handle)[0]),
        "gpu_throttle_reasons": lambda: int(P.nvmlDeviceGetCurrentClocksEventReasons(handle)),
    }
    out: dict[str, Any] = {}
    missing: dict[str, str] = {}
    for key, query in queries.items():
        value, err = _call(query, what=key)
        out[key] = value
        if err:
            missing[key] = err
    out["nvml_missing"] = missing or None
    return out


def whole_gpu(handle: Any) -> tuple[Any, bool]:
    """(handle of the physical GPU, True when `handle` was a MIG slice).

    Power, energy, clocks and ECC belong to the whole card: a MIG slice shares them with its
    siblings, so telemetry reads the parent and says so.
    """
    is_mig, err = _call(pynvml.nvmlDeviceIsMigDeviceHandle, handle, what="nvmlDeviceIsMigDeviceHandle")
    if err or not getattr(is_mig, "value", is_mig):
        return handle, False
    parent, err = _call(pynvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle, handle, what="parent of MIG device")
    return (handle, True) if err else (parent, True)


def health(handle: Any) -> dict[str, Any]:
    """ECC and memory-repair counters of one GPU: flat fields, None where unsupported.

    Volatile ECC counts (since the driver loaded), retired pages (before Ampere) and remapped rows
    (Ampere and later). Fields that could not be read are listed under `health_missing`.
    """
    P = pynvml
    queries: dict[str, Callable[[], Any]] = {
        "ecc_enabled": lambda: bool(P.nvmlDeviceGetEccMode(handle)[0]),
        "ecc_corrected": lambda: int(
            P.nvmlDeviceGetTotalEccErrors(handle, P.NVML_MEMORY_ERROR_TYPE_CORRECTED, P.NVML_VOLATILE_ECC)
        ),
        "ecc_uncorrected": lambda: int(
            P.nvmlDeviceGetTotalEccErrors(handle, P.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, P.NVML_VOLATILE_ECC)
        ),
        "retired_pages_sbe": lambda: len(
            P.nvmlDeviceGetRetiredPages(handle, P.NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS)
        ),
        "retired_pages_dbe": lambda: len(
            P.nvmlDeviceGetRetiredPages(handle, P.NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR)
        ),
        "retired_pages_pending": lambda: bool(P.nvmlDeviceGetRetiredPagesPendingStatus(handle)),
    }
    out: dict[str, Any] = {}
    missing: dict[str, str] = {}
    for key, query in queries.items():
        out[key], err = _call(query, what=key)
        if err:
            missing[key] = err
    rows, err = _call(lambda: P.nvmlDeviceGetRemappedRows(handle), what="remapped_rows")
    keys = ("remapped_rows_correctable", "remapped_rows_uncorrectable", "remap_pending", "remap_failed")
    for i, key in enumerate(keys):
        out[key] = None if rows is None else (int(rows[i]) if i < 2 else bool(rows[i]))
        if err:
            missing[key] = err
    out["health_missing"] = missing or None
    return out
