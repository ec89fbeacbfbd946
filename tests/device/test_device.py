"""Device detection and environment capture, on a machine without a usable GPU."""

from __future__ import annotations

import json
import re
import warnings

import pytest
import torch

from bench.device import base as devmod
from bench.device import cpuinfo, nvml
from bench.device.base import CudaDevice, DeviceError, detect
from bench.measure import provenance as env


def test_cpu_device(cpu):
    assert cpu.kind == "cpu" and cpu.name and cpu.mem_total_bytes() >= cpu.mem_free_bytes() > 0
    assert cpu.unsupported_dtype_reason("fp32") is None and cpu.unsupported_dtype_reason("bf16") is None
    assert "tensor-core" in cpu.unsupported_dtype_reason("tf32")
    assert "8.9" in cpu.unsupported_dtype_reason("fp8")
    assert cpu.mem_alloc_peak_bytes() is None and not cpu.l2_flush


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU path")
def test_explicit_cuda_without_a_gpu_says_why():
    with pytest.raises(DeviceError) as e:
        detect("cuda")
    assert str(e.value).startswith("cannot use cuda: ") and "\n" not in str(e.value)


def test_bad_device_names():
    with pytest.raises(DeviceError, match="unknown device 'tpu'"):
        detect("tpu")


def test_gpu_present_but_unusable_is_said(monkeypatch):
    # NVML sees an H100 but torch cannot use it (a CPU-only torch build, say): run on the CPU, say so.
    monkeypatch.setattr(devmod, "cuda_unusable_reason", lambda: "torch 2.13.0+cpu is a CPU-only build")
    monkeypatch.setattr(nvml, "gpu_names", lambda: ["NVIDIA H100 80GB HBM3"] * 8)
    dev = detect()
    assert dev.kind == "cpu"
    (note,) = dev.notes
    assert "GPU present but unusable" in note and "8 NVIDIA GPUs" in note and "CPU-only build" in note


def test_no_gpu_no_note(monkeypatch):
    monkeypatch.setattr(devmod, "cuda_unusable_reason", lambda: "torch.cuda.is_available() is False")
    monkeypatch.setattr(devmod, "gpu_presence_without_torch", lambda: None)
    assert detect().notes == []


def test_cpu_only_torch_reason(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", None)
    assert "CPU-only build" in devmod.cuda_unusable_reason()


def test_nvml_absent_gives_reasons_not_crashes():
    if nvml.init_error() is None:
        pytest.skip("NVML works here")
    version, reason = nvml.driver_version()
    assert version is None and reason
    assert nvml.gpu_names() == []


def test_env_capture_cpu(cpu):
    info = env.capture(cpu)
    json.dumps(info)  # plain data only
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", info["captured_at"])
    assert info["torch_version"] == torch.__version__ and info["tokenbench_version"]
    assert info["device_kind"] == "cpu" and info["cpu_cores_logical"] >= 1 and info["hostname"]
    assert info["python_version"].count(".") == 2
    if nvml.init_error():
        assert info["driver_version"] is None and info["driver_version_reason"]


def test_nvml_finds_a_mig_slice_by_its_uuid(monkeypatch):
    # torch gives a bare UUID; NVML knows a whole GPU as GPU-<uuid> and a MIG slice as MIG-<uuid>
    asked = []

    def by_uuid(uuid):
        asked.append(uuid)
        if not uuid.startswith("MIG-"):
            raise nvml.pynvml.NVMLError(nvml.pynvml.NVML_ERROR_NOT_FOUND)
        return "handle"

    monkeypatch.setattr(nvml, "init_error", lambda: None)
    monkeypatch.setattr(nvml.pynvml, "nvmlDeviceGetHandleByUUID", by_uuid)
    assert nvml.handle_for_uuid("GPU-1234") == ("handle", None)
    assert asked == ["GPU-1234", "MIG-1234"]
    monkeypatch.setattr(nvml.pynvml, "nvmlDeviceGetHandleByUUID", lambda u: by_uuid("GPU-" + u))
    handle, reason = nvml.handle_for_uuid("abcd")
    assert handle is None and reason.startswith("nvmlDeviceGetHandleByUUID: ")


def test_env_records_numerics_settings(cpu, monkeypatch):
    monkeypatch.setenv("NVIDIA_TF32_OVERRIDE", "0")
    info = env.capture(cpu)
    assert info["env_vars"]["NVIDIA_TF32_OVERRIDE"] == "0"
    assert info["float32_matmul_precision"] in ("highest", "high", "medium")
    assert isinstance(info["fp16_reduced_precision_reduction"], bool)


def test_env_has_every_field_a_record_copies(cpu):
    from bench.measure import provenance as env

    info = env.capture(cpu)
    for key in ("hostname", "tokenbench_version", "torch_version", "cuda_version", "driver_version"):
        assert key in info, key
    assert info["cuda_version"] == torch.version.cuda


@pytest.mark.parametrize(
    ("cc", "dtype", "ok"),
    [
        ((7, 0), "fp16", True),
        ((7, 5), "bf16", False),
        ((7, 5), "tf32", False),
        ((8, 0), "bf16", True),
        ((8, 0), "tf32", True),
        ((8, 6), "fp8", False),
        ((8, 9), "fp8", True),
        ((9, 0), "fp8", True),
    ],
)
def test_cuda_dtype_support_by_compute_capability(cc, dtype, ok):
    dev = CudaDevice(torch_device=torch.device("cuda", 0), name="Some GPU", capability=cc)  # not opened
    reason = dev.unsupported_dtype_reason(dtype)
    assert (reason is None) == ok, reason


# --- the CUDA branches of detection that need no GPU ----------------------------------------------


def test_the_cpu_has_no_stream_and_knows_no_odd_dtype(cpu):
    with pytest.raises(NotImplementedError, match="the cpu device has no streams"):
        cpu.stream()
    assert cpu.unsupported_dtype_reason("int4") == "unknown dtype 'int4'"
    dev = CudaDevice(torch_device=torch.device("cuda", 0), name="Some GPU", capability=(9, 0))  # not opened
    assert dev.unsupported_dtype_reason("int4") == "unknown dtype 'int4'"


def test_cuda_build_without_a_usable_gpu_says_why(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", "12.8")

    def unavailable() -> bool:
        warnings.warn("CUDA initialization: The NVIDIA driver on your system is too old\nmore detail", stacklevel=1)
        return False

    monkeypatch.setattr(torch.cuda, "is_available", unavailable)
    driver = "CUDA initialization: The NVIDIA driver on your system is too old"  # the first line only
    assert devmod.cuda_unusable_reason() == f"torch.cuda.is_available() is False ({driver})"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert devmod.cuda_unusable_reason() == "torch.cuda.is_available() is False (CUDA_VISIBLE_DEVICES hides every GPU)"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert "no usable CUDA device or driver" in devmod.cuda_unusable_reason()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert devmod.cuda_unusable_reason() is None


def test_detect_picks_the_cuda_index_asked_for(monkeypatch):
    opened = []
    monkeypatch.setattr(devmod, "cuda_unusable_reason", lambda: None)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(CudaDevice, "open", classmethod(lambda cls, index: opened.append(index) or "opened"))
    assert detect() == detect("cuda") == detect("cuda:1") == "opened"
    assert opened == [0, 0, 1]
    with pytest.raises(DeviceError, match="unknown device 'cuda:x'"):
        detect("cuda:x")
    with pytest.raises(DeviceError, match="'cuda:2' does not exist: torch sees 2 GPU"):
        detect("cuda:2")


def test_gpu_presence_from_device_files_and_the_cpu_name_fallback(monkeypatch):
    monkeypatch.setattr(nvml, "gpu_names", lambda: [])
    monkeypatch.setattr(devmod.glob, "glob", lambda pattern: ["/dev/nvidia0"])
    assert devmod.gpu_presence_without_torch() == "NVIDIA device files exist under /dev"

    def no_cpuinfo(*args, **kwargs):
        raise OSError("no /proc here")

    monkeypatch.setattr(cpuinfo, "open", no_cpuinfo, raising=False)
    monkeypatch.setattr(cpuinfo.platform, "processor", lambda: "")
    monkeypatch.setattr(cpuinfo.platform, "machine", lambda: "aarch64")
    assert devmod.cpu_model_name() == "aarch64"
