"""Environment capture for provenance: software, host and the device's state as found."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any

import psutil
import torch

import bench
from bench.device import nvml
from bench.device.base import CudaDevice, Device, cpu_model_name
from bench.results.writer import utc_now


def git_commit() -> tuple[str | None, bool | None]:
    """(commit, dirty) of the tokenbench source tree when it is a git checkout."""
    src = Path(bench.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit or None, bool(status.strip())


def software() -> dict[str, Any]:
    commit, dirty = git_commit()
    driver, driver_reason = nvml.driver_version()
    return {
        "tokenbench_version": bench.__version__,
        "tokenbench_commit": commit,
        "tokenbench_dirty": dirty,
        "python_version": platform.python_version(),
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda,
        "cudnn_version": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "driver_version": driver,
        "driver_version_reason": driver_reason,
        "torch_num_threads": torch.get_num_threads(),
        **numerics_settings(),
    }


# Environment variables that change which kernels run or how they round, recorded as found.
_NUMERICS_ENV = (
    "NVIDIA_TF32_OVERRIDE",
    "TORCH_CUDNN_SDPA_DEPRIORITIZED",
    "CUBLAS_WORKSPACE_CONFIG",
    "CUBLASLT_WORKSPACE_SIZE",
    "OMP_NUM_THREADS",
)


def numerics_settings() -> dict[str, Any]:
    """torch settings and environment variables that change what a number means."""
    matmul = torch.backends.cuda.matmul
    return {
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "fp16_reduced_precision_reduction": matmul.allow_fp16_reduced_precision_reduction,
        "bf16_reduced_precision_reduction": matmul.allow_bf16_reduced_precision_reduction,
        "env_vars": {k: os.environ[k] for k in _NUMERICS_ENV if k in os.environ} or None,
    }


def host() -> dict[str, Any]:
    return {
        "hostname": socket.gethostname(),
        "os": f"{platform.system()} {platform.release()}",
        "cpu_model": cpu_model_name(),
        "cpu_cores_logical": os.cpu_count(),
        "cpu_cores_physical": psutil.cpu_count(logical=False),
        "host_mem_total_bytes": int(psutil.virtual_memory().total),
    }


def device_info(device: Device) -> dict[str, Any]:
    """The benchmarked device: identity from torch, state as found from NVML."""
    info: dict[str, Any] = {
        "device": str(device.torch_device),
        "device_kind": device.kind,
        "device_name": device.name,
        "device_mem_total_bytes": device.mem_total_bytes(),
        "device_notes": list(device.notes) or None,
    }
    if not isinstance(device, CudaDevice):
        return info
    props = torch.cuda.get_device_properties(device.index)
    uuid = device.uuid
    info.update(
        {
            "gpu_index": device.index,
            "gpu_compute_capability": f"{device.capability[0]}.{device.capability[1]}",
            "gpu_sm_count": props.multi_processor_count,
            "gpu_l2_cache_bytes": device.l2_cache_bytes,
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        }
    )
    handle, reason = nvml.handle_for_uuid(uuid) if uuid else (None, "torch reports no GPU uuid")
    if handle is None:
        info.update({"gpu_uuid": uuid, "nvml_missing": {"all": reason}})
    else:
        info.update(nvml.card_state(handle))
    return info


def capture(device: Device) -> dict[str, Any]:
    """Everything a reader needs to know where a number came from."""
    return {"captured_at": utc_now(), **software(), **host(), **device_info(device)}
