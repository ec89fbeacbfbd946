"""GPU tests: run with `pytest -m gpu` on a machine with a CUDA GPU (deselected by default).

They assert invariants that hold on any correct GPU run: outputs check, fractions of peak stay
at or under 1 (more would mean a wrong peak or a timer that under-reports), the card's identity
is captured. Speed targets live in tests/benchmarks/, which print figures instead of failing.
"""

from __future__ import annotations

import pytest
import torch

import workloads
from bench.device.base import CudaDevice, detect
from bench.measure import provenance as env
from bench.measure.runner import Runner
from bench.measure.suites import Entry
from bench.measure.timing import TimerConfig, measure
from bench.results.writer import RunWriter

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

QUICK = TimerConfig(warmup_s=0.2, min_time_s=0.3, min_reps=10)


@pytest.fixture(scope="module")
def gpu() -> CudaDevice:
    dev = detect("cuda")
    assert isinstance(dev, CudaDevice)
    return dev


def run(gpu, tmp_path, wid: str, **raw) -> dict:
    w = workloads.get(wid)
    info = env.capture(gpu)
    runner = Runner(gpu, RunWriter(tmp_path, "gpu", {}), info, seed=0)
    return runner.run_entry(0, Entry(w, w.parse(raw), QUICK))


def test_detect_and_env(gpu):
    info = env.capture(gpu)
    assert info["device_kind"] == "cuda" and info["gpu_uuid"] and info["gpu_sm_count"] > 0
    assert gpu.l2_cache_bytes > 0 and gpu.l2_flush
    assert gpu.mem_total_bytes() >= gpu.mem_free_bytes() > 0


@pytest.mark.parametrize("dtype", ["fp32", "tf32", "fp16", "bf16", "fp8"])
def test_gemm_checks_and_stays_under_peak(gpu, tmp_path, dtype):
    rec = run(gpu, tmp_path, "gemm", m=4096, n=4096, k=4096, dtype=dtype)
    if gpu.unsupported_dtype_reason(dtype):
        assert rec["status"] == "skipped"
        return
    assert rec["status"] == "ok", rec["reason"]
    assert rec["timer"] == "cuda_event" and rec["l2_flushed"] and rec["mem_alloc_peak_bytes"] > 0
    if rec["frac_peak_flops"] is not None:
        assert 0 < rec["frac_peak_flops"] <= 1.0


def test_copy_stays_under_peak_bandwidth(gpu, tmp_path):
    rec = run(gpu, tmp_path, "copy", size_mib=1024)
    assert rec["status"] == "ok" and rec["check_passed"]
    if rec["frac_peak_bw"] is not None:
        assert 0 < rec["frac_peak_bw"] <= 1.0


@pytest.mark.parametrize("kv_heads", [32, 8])
def test_attention_checks(gpu, tmp_path, kv_heads):
    rec = run(gpu, tmp_path, "attention", batch=2, heads=32, kv_heads=kv_heads, seq_len=2048, dtype="bf16")
    assert rec["status"] == "ok", rec["reason"]
    if rec["frac_peak_flops"] is not None:
        assert 0 < rec["frac_peak_flops"] <= 1.0


def test_event_timer_matches_a_host_clock_for_a_long_kernel():
    """For a kernel of ~100 ms, event time and synced host time agree to a few percent.

    It runs on the last GPU: events recorded on another GPU's stream would measure nothing.
    """
    gpu = detect(f"cuda:{torch.cuda.device_count() - 1}")
    a = torch.randn(8192, 8192, device=gpu.torch_device)
    with workloads.base.float32_matmul_precision("fp32"):
        t = measure(lambda: a @ a, gpu, TimerConfig(warmup_s=0.1, min_time_s=0.5, min_reps=3, flush_l2=False))
        host = measure(lambda: a @ a, _HostTimed(gpu), TimerConfig(warmup_s=0.0, min_time_s=0.5, min_reps=3))
    assert t.summary.median == pytest.approx(host.summary.median, rel=0.1)


class _HostTimed:
    """The same GPU seen through the host clock: kind 'cpu' makes measure() use perf_counter."""

    kind = "cpu"
    l2_flush = False

    def __init__(self, dev: CudaDevice):
        self._dev = dev

    def synchronize(self) -> None:
        self._dev.synchronize()

    def flush_l2(self) -> None:
        pass


def test_out_of_memory_is_a_record_not_a_crash(gpu, tmp_path):
    total = gpu.mem_total_bytes()
    side = int((total / 2 / 4) ** 0.5) + 1024  # A and B alone exceed the card: the fit check skips it
    rec = run(gpu, tmp_path, "gemm", m=side, n=side, k=side, dtype="fp32")
    assert rec["status"] == "skipped" and "needs about" in rec["reason"]


def test_llm_decode_stays_under_peak_bandwidth(gpu, tmp_path):
    rec = run(gpu, tmp_path, "decode", model="llama-3.1-8b", n_layers=4, batch=1, prompt_len=128, new_tokens=32)
    assert rec["status"] == "ok", rec["reason"]
    assert rec["compute_dtype"] == "bf16" and rec["ttft_median_s"] <= rec["e2e_median_s"]
    if rec["mbu"] is not None:
        assert 0 < rec["mbu"] <= 1.0


def test_llm_train_stays_under_peak_flops(gpu, tmp_path):
    rec = run(gpu, tmp_path, "train", model="llama-3.2-1b", n_layers=2, batch=2, seq_len=1024)
    assert rec["status"] == "ok", rec["reason"]
    if rec["mfu"] is not None:
        assert 0 < rec["mfu"] <= 1.0


def test_llm_compiled_decode_replays_cuda_graphs(gpu, tmp_path):
    rec = run(gpu, tmp_path, "decode", model="tiny", compile=True, batch=4, prompt_len=32, new_tokens=16)
    assert rec["status"] == "ok", rec["reason"]
    assert rec["kernel"] == "torch.compile+cudagraphs" and rec["compile_s"] > 0


# --- telemetry on the real card ------------------------------------------------------------------


def test_nvml_telemetry_measures_a_gemm_window(gpu, tmp_path):
    """A bf16 GEMM for at least the 1 s energy window: energy from the counter, power between idle
    and the limit, counter and integrated power agreeing, the card's health read before and after."""
    from bench.device import telemetry

    tel = telemetry.for_device(gpu)
    if not tel.active:
        pytest.skip(f"no NVML telemetry here: {tel.reason}")
    w = workloads.get("gemm")
    runner = Runner(gpu, RunWriter(tmp_path, "tel", {}), env.capture(gpu), seed=0, telemetry=tel)
    rec = runner.run_entry(0, Entry(w, w.parse({"m": 8192, "n": 8192, "k": 8192, "dtype": "bf16"}), QUICK))
    assert rec["status"] == "ok", rec["reason"]
    assert rec["energy_window_s"] >= telemetry.DEFAULT_MIN_WINDOW_S and rec["energy_window_calls"] >= rec["n_samples"]
    assert rec["energy_j"] > 0 and rec["energy_source"] in ("nvml_energy_counter", "nvml_power_integrated")
    limit = rec["power_limit_w"] or 1000.0
    assert 20.0 < rec["power_mean_w"] <= 1.1 * limit and rec["power_max_w"] <= 1.2 * limit
    if rec["energy_counter_j"] is not None and rec["energy_integrated_j"] is not None:
        assert rec["energy_disagreement"] < 0.10, rec
    assert rec["sm_clock_min_mhz"] > 0 and rec["energy_per_tflop_j"] > 0 and rec["health_change"] in ("ok", None)


def test_idle_baseline_on_the_card(gpu):
    from bench.device import telemetry
    from bench.device.energy import idle_fields

    tel = telemetry.for_device(gpu)
    if not tel.active:
        pytest.skip(f"no NVML telemetry here: {tel.reason}")
    idle = idle_fields(telemetry.idle_window(telemetry.Sampler(tel), 1.0), 1.0)
    assert idle["idle_window_s"] >= 1.0 and 5.0 < idle["idle_power_w"] < (tel.power_limit_w() or 1000.0)
