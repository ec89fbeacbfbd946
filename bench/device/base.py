"""The device layer: one small interface, a CUDA implementation and a CPU one.

`detect()` picks the first usable CUDA GPU, otherwise the CPU, and says why when a GPU is
present but torch cannot use it (a CPU-only torch build, a driver that fails to initialise).
"""

from __future__ import annotations

import glob
import os
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import psutil
import torch

from bench.device import nvml
from bench.device.cpuinfo import cpu_model_name
from bench.text import plural

# Dtypes a workload may ask for, by the short names used in suites and records.
DTYPES: dict[str, torch.dtype | None] = {
    "fp32": torch.float32,
    "tf32": torch.float32,  # fp32 storage, TF32 tensor-core math
    "fp16": torch.float16,
    "bf16": torch.bfloat16,
    "fp8": getattr(torch, "float8_e4m3fn", None),
}


class DeviceError(Exception):
    """A device was asked for that cannot be used (the message says why, in one line)."""


@dataclass
class Device(ABC):
    """What the harness needs from a device: identity, sync, memory and dtype support."""

    torch_device: torch.device
    name: str
    notes: list[str] = field(default_factory=list)
    l2_cache_bytes: int = 0

    kind: str = "abstract"

    @abstractmethod
    def synchronize(self) -> None:
        """Block until all work queued on the device has finished."""

    @abstractmethod
    def mem_free_bytes(self) -> int:
        """Bytes a workload may still allocate on this device."""

    @abstractmethod
    def mem_total_bytes(self) -> int:
        """Total memory of the device in bytes."""

    @abstractmethod
    def unsupported_dtype_reason(self, dtype: str) -> str | None:
        """None when `dtype` runs here, else a one-line reason it does not."""

    def flush_l2(self) -> None:  # noqa: B027 - a no-op is the right default
        """Evict the last-level cache between timed calls; no-op where not needed."""

    def stream(self) -> torch.cuda.Stream:
        """The stream this device's work is queued on (events must be recorded on it).

        Only a CUDA device has one; callers ask only where `kind == "cuda"`.
        """
        raise NotImplementedError(f"the {self.kind} device has no streams")

    def reset_peak_memory(self) -> None:  # noqa: B027
        """Start a new window for `mem_alloc_peak_bytes`."""

    def mem_alloc_peak_bytes(self) -> int | None:
        """Peak bytes held by torch's allocator since the last reset, where known."""
        return None

    @property
    def l2_flush(self) -> bool:
        return False


@dataclass
class CpuDevice(Device):
    kind: str = "cpu"

    def synchronize(self) -> None:
        pass

    def mem_free_bytes(self) -> int:
        return int(psutil.virtual_memory().available)

    def mem_total_bytes(self) -> int:
        return int(psutil.virtual_memory().total)

    def unsupported_dtype_reason(self, dtype: str) -> str | None:
        if dtype not in DTYPES:
            return f"unknown dtype {dtype!r}"
        if dtype == "tf32":
            return "tf32 is a tensor-core mode of NVIDIA GPUs; the CPU has none"
        if dtype == "fp8":
            return "fp8 matmul needs an NVIDIA GPU of compute capability 8.9 or newer"
        return None


@dataclass
class CudaDevice(Device):
    index: int = 0
    capability: tuple[int, int] = (0, 0)
    uuid: str | None = None  # as NVML spells it: GPU-... or, for a MIG slice, MIG-...
    kind: str = "cuda"
    _flush_buf: torch.Tensor | None = field(default=None, repr=False)

    @classmethod
    def open(cls, index: int) -> CudaDevice:
        # Make it the current device: events, SDPA's kernel choice and anything else that reads
        # "the current stream" must see this GPU, not cuda:0.
        torch.cuda.set_device(index)
        props = torch.cuda.get_device_properties(index)
        raw_uuid = str(getattr(props, "uuid", "") or "")  # torch gives it without NVML's "GPU-" prefix
        uuid = (raw_uuid if raw_uuid.startswith(("GPU-", "MIG-")) else f"GPU-{raw_uuid}") if raw_uuid else None
        dev = cls(
            torch_device=torch.device("cuda", index),
            name=props.name,
            index=index,
            capability=(props.major, props.minor),
            uuid=uuid,
            l2_cache_bytes=int(getattr(props, "L2_cache_size", 0) or 0),
        )
        # Twice the L2 size, overwritten before a timed call, leaves nothing of the previous
        # call's working set in cache (as triton's do_bench and nvbench do).
        flush_bytes = max(2 * dev.l2_cache_bytes, 64 * 2**20)
        dev._flush_buf = torch.empty(flush_bytes, dtype=torch.uint8, device=dev.torch_device)
        return dev

    def synchronize(self) -> None:
        torch.cuda.synchronize(self.torch_device)

    def mem_free_bytes(self) -> int:
        free, _total = torch.cuda.mem_get_info(self.torch_device)
        return int(free)

    def mem_total_bytes(self) -> int:
        _free, total = torch.cuda.mem_get_info(self.torch_device)
        return int(total)

    def unsupported_dtype_reason(self, dtype: str) -> str | None:
        if dtype not in DTYPES:
            return f"unknown dtype {dtype!r}"
        cc = self.capability
        if dtype in ("bf16", "tf32") and cc < (8, 0):
            return f"{dtype} needs compute capability 8.0 or newer; {self.name} is {cc[0]}.{cc[1]}"
        if dtype == "fp8":
            if DTYPES["fp8"] is None or not hasattr(torch, "_scaled_mm"):
                return f"this torch ({torch.__version__}) has no fp8 matmul"
            if cc < (8, 9):
                return f"fp8 matmul needs compute capability 8.9 or newer; {self.name} is {cc[0]}.{cc[1]}"
        return None

    def flush_l2(self) -> None:
        if self._flush_buf is not None:
            self._flush_buf.zero_()

    def stream(self) -> torch.cuda.Stream:
        """The stream this device's work is queued on (events must be recorded on it)."""
        return torch.cuda.current_stream(self.torch_device)

    def reset_peak_memory(self) -> None:
        torch.cuda.reset_peak_memory_stats(self.torch_device)

    def mem_alloc_peak_bytes(self) -> int | None:
        return int(torch.cuda.max_memory_allocated(self.torch_device))

    @property
    def l2_flush(self) -> bool:
        return self._flush_buf is not None


def cpu_device() -> CpuDevice:
    return CpuDevice(torch_device=torch.device("cpu"), name=cpu_model_name())


def gpu_presence_without_torch() -> str | None:
    """Describe NVIDIA GPUs that exist on the machine, found without torch, or None."""
    names = nvml.gpu_names()
    if names:
        return f"{plural(len(names), 'NVIDIA GPU')} seen by NVML ({', '.join(sorted(set(names)))})"
    if glob.glob("/dev/nvidia[0-9]*"):
        return "NVIDIA device files exist under /dev"
    return None


def cuda_unusable_reason() -> str | None:
    """Why torch cannot use CUDA here, or None when it can."""
    if torch.version.cuda is None:
        return f"torch {torch.__version__} is a CPU-only build"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ok = torch.cuda.is_available()
    if ok:
        return None
    detail = "; ".join(str(w.message).splitlines()[0] for w in caught)
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        detail = detail or "CUDA_VISIBLE_DEVICES hides every GPU"
    return f"torch.cuda.is_available() is False ({detail or 'no usable CUDA device or driver'})"


def detect(requested: str | None = None) -> Device:
    """Open the device to benchmark: `requested` is None (auto), 'cpu', 'cuda' or 'cuda:N'.

    Auto picks cuda:0 when torch can use it, else the CPU, noting any GPU it had to pass over.
    An explicit CUDA request that cannot be met raises DeviceError with the reason.
    """
    req = (requested or "auto").strip().lower()
    if req == "cpu":
        return cpu_device()
    if req != "auto" and not req.startswith("cuda"):
        raise DeviceError(f"unknown device {requested!r}: use cpu, cuda or cuda:N")
    reason = cuda_unusable_reason()
    if reason is None:
        count = torch.cuda.device_count()
        index = 0
        if ":" in req:
            try:
                index = int(req.split(":", 1)[1])
            except ValueError:
                raise DeviceError(f"unknown device {requested!r}: use cpu, cuda or cuda:N") from None
            if not 0 <= index < count:
                raise DeviceError(f"device {requested!r} does not exist: torch sees {plural(count, 'GPU')}")
        return CudaDevice.open(index)
    if req != "auto":
        raise DeviceError(f"cannot use {requested}: {reason}")
    dev = cpu_device()
    present = gpu_presence_without_torch()
    if present:
        dev.notes.append(f"GPU present but unusable: {present}, but {reason}; running on the CPU")
    return dev
