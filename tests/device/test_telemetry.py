"""Telemetry: hand-computed energy, power, throttle and health figures from a scripted pynvml."""

from __future__ import annotations

import contextlib
import ctypes
import time

import pynvml
import pytest
import torch

from bench.device import energy, nvml, telemetry
from bench.device.base import CudaDevice, cpu_device
from bench.device.energy import clock_event_shares, integrate_power, window_fields
from bench.device.rapl import HostEnergy
from bench.device.telemetry import NullTelemetry, NvmlTelemetry, Sample, Sampler, health_change
from bench.measure.runner import Runner
from bench.measure.suites import Entry
from bench.measure.timing import TimerConfig, measure
from bench.results.schema import check_record
from bench.results.writer import RunWriter, TimelineWriter
from tests.support.fakes import Fake, FakeCase
from tests.support.scripted_nvml import HANDLE, FakeClock, ScriptedGpu, scripted_pynvml


@pytest.fixture
def use_nvml(monkeypatch):
    """Install a stand-in pynvml module for bench.device.nvml (and forget any cached init result)."""

    def install(fake):
        monkeypatch.setattr(nvml, "pynvml", fake)
        nvml.init_error.cache_clear()

    yield install
    nvml.init_error.cache_clear()


# --- window arithmetic, by hand --------------------------------------------------------------


def test_trapezoid_with_interpolated_edges():
    # p(0.05) = 150 and p(0.25) = 300 interpolated; 0.05*(150+200)/2 + 0.1*(200+300)/2 + 0.05*300
    points = [(0.0, 100.0), (0.1, 200.0), (0.2, 300.0), (0.3, 300.0)]
    joules, why = integrate_power(points, 0.05, 0.25)
    assert why is None and joules == pytest.approx(8.75 + 25.0 + 15.0)


def test_edges_between_two_samples_only():
    # one reading either side: the window's power is the line between them, 125 W to 175 W
    joules, _ = integrate_power([(0.0, 100.0), (1.0, 200.0)], 0.25, 0.75)
    assert joules == pytest.approx(0.5 * (125 + 175) / 2)


def test_no_reading_before_the_window_gives_a_reason_not_a_number():
    joules, why = integrate_power([(0.2, 100.0), (1.0, 100.0)], 0.1, 0.9)
    assert joules is None and "both sides" in why


def test_clock_event_shares_by_hand():
    samples = [Sample(0, clock_event_reasons=b) for b in (0x4, 0x4 | 0x40, 0x1, 0x0)]
    shares, limited = clock_event_shares(samples)
    assert shares == {"gpu_idle": 0.25, "sw_power_cap": 0.5, "hw_thermal_slowdown": 0.25}
    assert limited == 0.5  # gpu_idle is not a limit; 0x4 and 0x44 are
    assert clock_event_shares([Sample(0)]) == ({}, None)
    assert energy.reason_names(0x800) == ["bit_0x800"]


# --- NVML through the scripted module -------------------------------------------------------


def ramp(t: float) -> float:
    """100 W at t = 0 rising 200 W per second: the trapezoid rule is exact on it."""
    return 100.0 + 200.0 * t


def ramp_gpu(clock: FakeClock, scale: float = 1.0, **kw) -> ScriptedGpu:
    """The ramp, its exact energy integral (times `scale`, to script a counter that disagrees),
    power capping from t = 0.5 with the SM clock dropping, warming up, filling memory."""
    script = {
        "clock": clock,
        "power_w": ramp,
        "energy_mj": lambda t: 7_000_000 + 1000 * (100 * t + 100 * t * t) * scale,
        "reasons": lambda t: 0x4 if t >= 0.5 else 0x0,
        "sm_clock_mhz": lambda t: 1755 if t >= 0.5 else 1980,
        "temperature_c": lambda t: round(60 + 20 * t),
        "mem_used_bytes": lambda t: (10 + round(10 * t)) << 30,
    }
    return ScriptedGpu(**{**script, **kw})


def run_window(tel: telemetry.Telemetry, clock: FakeClock) -> telemetry.Window:
    """Read as a Sampler would, at set times: a sample at 0.0, the counter at the window's edges
    0.05 and 0.95, samples every 0.1 s inside, and one after the window at 1.0."""

    def read(t: float) -> Sample:
        clock.t = t
        return tel.sample(t)

    samples = [read(0.0)]
    clock.t = 0.05
    c0, r0 = tel.energy_j()
    samples += [read(i / 10) for i in range(1, 10)]
    clock.t = 0.95
    c1, r1 = tel.energy_j()
    samples.append(read(1.0))
    return telemetry.Window(
        t0_s=0.05, t1_s=0.95, samples=samples, counter_start_j=c0, counter_end_j=c1, counter_reason=r0 or r1,
        source=tel.source, reason=tel.problem, power_reading=tel.power_reading, interval_s=0.1,
        power_limit_w=tel.power_limit_w(),
    )  # fmt: skip


def test_energy_power_and_behaviour_from_a_known_trace(use_nvml):
    clock = FakeClock()
    use_nvml(scripted_pynvml(ramp_gpu(clock)))
    tel = NvmlTelemetry(HANDLE)
    assert tel.power_reading.startswith("instant") and not tel.missing
    w = run_window(tel, clock)
    f = window_fields(w, calls=10, timed_s=0.72, flops_per_call=1e12, tokens_per_call=100, idle_power_w=60.0)
    # the integral of 100 + 200 t from 0.05 to 0.95: 100 x 0.9 + 100 x (0.95^2 - 0.05^2) = 180 J
    assert f["energy_counter_j"] == pytest.approx(180.0)
    assert f["energy_integrated_j"] == pytest.approx(180.0)
    assert f["energy_j"] == pytest.approx(180.0) and f["energy_source"] == "nvml_energy_counter"
    assert f["energy_disagreement"] == pytest.approx(0.0, abs=1e-9) and f["energy_disagrees"] is False
    assert f["energy_window_s"] == pytest.approx(0.9)
    assert f["power_mean_w"] == pytest.approx(200.0)  # 180 J / 0.9 s
    # samples inside: 120, 140, ..., 280 W; p99 = 260 + 0.92 x 20 (linear interpolation)
    assert f["n_telemetry_samples"] == 9
    assert f["power_p99_w"] == pytest.approx(278.4) and f["power_max_w"] == 280.0
    assert f["power_limit_w"] == 700.0
    # sw_power_cap from t = 0.5: 5 of the 9 samples inside; clocks 4 x 1980 and 5 x 1755
    assert f["clock_event_shares"] == {"sw_power_cap": pytest.approx(5 / 9)}
    assert f["clock_limited_share"] == pytest.approx(5 / 9)
    assert f["sm_clock_min_mhz"] == 1755 and f["sm_clock_mean_mhz"] == pytest.approx((4 * 1980 + 5 * 1755) / 9)
    assert f["temperature_max_c"] == 78 and f["vram_used_peak_bytes"] == 19 << 30
    # per unit of work: 10 calls of 100 tokens and 1 TFLOP each
    assert f["energy_per_call_j"] == pytest.approx(18.0)
    assert f["energy_per_token_j"] == pytest.approx(0.18)
    assert f["energy_per_tflop_j"] == pytest.approx(18.0)
    assert f["tokens_per_s_per_w"] == pytest.approx(1000 / 180)  # tokens per joule
    assert f["energy_timed_share"] == pytest.approx(0.8)  # 0.72 s of calls in the 0.9 s window
    assert f["energy_above_idle_j"] == pytest.approx(180.0 - 60.0 * 0.9)


def test_counter_and_power_disagreeing_is_flagged(use_nvml):
    clock = FakeClock()
    use_nvml(scripted_pynvml(ramp_gpu(clock, scale=1.25)))
    f = energy.energy_fields(run_window(NvmlTelemetry(HANDLE), clock))
    assert f["energy_j"] == pytest.approx(225.0) and f["energy_source"] == "nvml_energy_counter"
    assert f["energy_disagreement"] == pytest.approx(45 / 225) and f["energy_disagrees"] is True


def test_without_a_counter_power_is_integrated(use_nvml):
    clock = FakeClock()
    use_nvml(scripted_pynvml(ramp_gpu(clock, counter=False)))
    tel = NvmlTelemetry(HANDLE)
    assert "energy" in tel.missing
    f = energy.energy_fields(run_window(tel, clock))
    assert f["energy_source"] == "nvml_power_integrated" and f["energy_j"] == pytest.approx(180.0)
    assert f["energy_counter_j"] is None and f["energy_disagreement"] is None


def test_without_instant_power_the_1s_average_is_used_and_named(use_nvml):
    clock = FakeClock()
    use_nvml(scripted_pynvml(ramp_gpu(clock, instant_power=False, counter=False)))
    tel = NvmlTelemetry(HANDLE)
    assert tel.power_reading.startswith("nvmlDeviceGetPowerUsage") and "1 s average" in tel.power_reading
    assert energy.energy_fields(run_window(tel, clock))["energy_j"] == pytest.approx(180.0)


def test_a_counter_that_did_not_advance_falls_back_to_power(use_nvml):
    clock = FakeClock()
    use_nvml(scripted_pynvml(ramp_gpu(clock, energy_mj=lambda t: 1000.0)))
    f = energy.energy_fields(run_window(NvmlTelemetry(HANDLE), clock))
    assert f["energy_source"] == "nvml_power_integrated" and f["energy_j"] == pytest.approx(180.0)


def test_the_stand_in_has_the_real_signatures(use_nvml):
    fake = scripted_pynvml(ramp_gpu(FakeClock()))
    with pytest.raises(TypeError):
        fake.nvmlDeviceGetClockInfo(HANDLE)  # the real function takes a clock type too
    with pytest.raises(pynvml.NVMLError_NotSupported):
        fake.nvmlDeviceGetFanSpeed(HANDLE)  # not scripted: not supported


# --- NVML absent or failing ------------------------------------------------------------------


def fake_gpu_device() -> CudaDevice:
    """A CudaDevice as `for_device` sees one, without touching CUDA."""
    return CudaDevice(torch_device=torch.device("cpu"), name="NVIDIA H100 80GB HBM3", uuid="GPU-0000")


def test_missing_nvml_library_leaves_telemetry_null_with_the_reason(use_nvml):
    use_nvml(scripted_pynvml(None, init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND))
    tel = telemetry.for_device(fake_gpu_device())
    assert not tel.active and "NVML init failed" in tel.reason and "Library Not Found" in tel.reason
    w = run_window(tel, FakeClock())
    f = window_fields(w, calls=3, timed_s=0.5, flops_per_call=1e9, tokens_per_call=None, idle_power_w=None)
    assert f["energy_j"] is None and "Library Not Found" in f["energy_reason"]
    assert f["power_mean_w"] is None and f["energy_per_call_j"] is None and f["energy_window_calls"] == 3


def test_nvml_permission_error_leaves_telemetry_null(use_nvml):
    use_nvml(scripted_pynvml(None, init_error=pynvml.NVML_ERROR_NO_PERMISSION))
    tel = telemetry.for_device(fake_gpu_device())
    assert not tel.active and "Insufficient Permissions" in tel.reason


def test_a_gpu_lost_mid_window_gives_null_energy_with_the_reason(use_nvml):
    clock = FakeClock()
    use_nvml(scripted_pynvml(ramp_gpu(clock, fail_after_s=0.5)))
    tel = NvmlTelemetry(HANDLE)
    f = energy.energy_fields(run_window(tel, clock))
    assert f["energy_j"] is None and "GPU is lost" in f["energy_reason"]


def test_nvml_without_power_or_energy_is_not_active(use_nvml):
    clock = FakeClock()
    use_nvml(scripted_pynvml(ramp_gpu(clock, counter=False, instant_power=False)))
    nvml.pynvml.nvmlDeviceGetPowerUsage.side_effect = pynvml.NVMLError(pynvml.NVML_ERROR_NO_PERMISSION)
    tel = NvmlTelemetry(HANDLE)
    assert not tel.active and tel.min_window_s == 0.0 and "neither power nor energy" in tel.reason
    assert Sampler(tel).min_window_s == 0.0 and tel.health()["ecc_corrected"] == 0  # health still read


def test_mig_slice_reads_the_whole_gpu(use_nvml):
    fake = scripted_pynvml(ramp_gpu(FakeClock()))
    fake.nvmlDeviceIsMigDeviceHandle.side_effect = lambda h: ctypes.c_uint(1)  # as the real binding returns it
    fake.nvmlDeviceGetDeviceHandleFromMigDeviceHandle.side_effect = lambda h: "parent-handle"
    use_nvml(fake)
    assert nvml.whole_gpu("mig-handle") == ("parent-handle", True)
    fake.nvmlDeviceIsMigDeviceHandle.side_effect = lambda h: ctypes.c_uint(0)
    assert nvml.whole_gpu("gpu-handle") == ("gpu-handle", False)


def test_a_crashing_sampler_thread_keeps_the_counter_energy(use_nvml):
    gpu = ScriptedGpu(clock=time.perf_counter, power_w=lambda t: 250.0, energy_mj=lambda t: 250_000.0 * t)
    use_nvml(scripted_pynvml(gpu))
    tel = NvmlTelemetry(HANDLE)
    sampler = Sampler(tel, interval_s=0.01)
    sampler.start()
    tel.sample = lambda t, state=True: 1 / 0  # a bug in the reading code
    time.sleep(0.2)
    w = sampler.stop()
    assert "sampler thread stopped: ZeroDivisionError" in w.reason
    # The counter and the window's clock are read a moment apart: a loaded CI machine can stretch that to ms.
    assert energy.energy_fields(w)["energy_j"] == pytest.approx(250.0 * w.duration_s, rel=2e-2)


def test_cpu_device_gets_null_telemetry():
    tel = telemetry.for_device(cpu_device())
    assert isinstance(tel, NullTelemetry) and "CPU" in tel.reason and tel.health() == {}


# --- card health -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("after", "level", "detail"),
    [
        ({}, "ok", None),
        ({"ecc_corrected": 3}, "warn", "ecc_corrected +2"),
        ({"ecc_uncorrected": 1}, "fail", "ecc_uncorrected +1"),
        ({"remap_pending": True}, "fail", "remap_pending became true"),
        ({"ecc_uncorrected": 2, "ecc_corrected": 2}, "fail", "ecc_uncorrected +2; ecc_corrected +1"),
    ],
)
def test_health_change(after, level, detail):
    before = {"ecc_corrected": 1, "ecc_uncorrected": 0, "remap_pending": False}
    assert health_change(before, {**before, **after}) == (level, detail)


def test_health_unknown_without_counters():
    assert health_change({"ecc_corrected": None}, {"ecc_corrected": None})[0] is None


def test_health_reads_through_nvml(use_nvml):
    clock = FakeClock()
    gpu = ramp_gpu(clock)
    gpu.health.update(ecc_corrected=4, remapped=(2, 0, 0, 0))
    use_nvml(scripted_pynvml(gpu))
    h = NvmlTelemetry(HANDLE).health()
    assert h["ecc_enabled"] is True and h["ecc_corrected"] == 4 and h["ecc_uncorrected"] == 0
    assert h["remapped_rows_correctable"] == 2 and h["remap_pending"] is False
    assert h["retired_pages_sbe"] is None and "retired_pages_sbe" in h["health_missing"]  # Ampere+: remaps only


# --- the sampler with its thread, the timer's window and the idle baseline ---------------------


def test_timer_lengthens_a_short_window_with_more_calls(cpu):
    class FakeSampler:  # a timing.WindowSampler
        min_window_s = 0.2
        opened = closed = 0.0

        def start(self):
            self.opened = time.perf_counter()

        def stop(self):
            self.closed = time.perf_counter()

    w = FakeSampler()
    cfg = TimerConfig(warmup_s=0, min_time_s=0, min_reps=2, max_reps=3)
    t = measure(lambda: sum(range(2000)), cpu, cfg, window=w)
    assert t.summary.n == 3  # max_reps holds for the kept samples
    assert t.window_calls > 3 and w.closed - w.opened >= 0.2
    # below max_reps the extra calls are kept as samples
    cfg = TimerConfig(warmup_s=0, min_time_s=0, min_reps=2, max_reps=10**7)
    t = measure(lambda: sum(range(2000)), cpu, cfg, window=w)
    assert t.summary.n == t.window_calls > 2


def test_sampler_thread_with_a_constant_draw(use_nvml):
    gpu = ScriptedGpu(clock=time.perf_counter, power_w=lambda t: 250.0, energy_mj=lambda t: 250_000.0 * t)
    use_nvml(scripted_pynvml(gpu))
    sampler = Sampler(NvmlTelemetry(HANDLE, min_window_s=0.3), interval_s=0.01)
    sampler.start()
    time.sleep(0.3)
    w = sampler.stop()
    f = energy.energy_fields(w)
    assert f["energy_j"] / w.duration_s == pytest.approx(250.0, rel=5e-3)
    assert f["energy_integrated_j"] == pytest.approx(f["energy_j"], rel=5e-3)
    assert len(w.inside()) >= 10 and w.samples[0].t_s <= w.t0_s and w.samples[-1].t_s >= w.t1_s


def test_idle_baseline(use_nvml):
    clock = FakeClock()
    use_nvml(scripted_pynvml(ScriptedGpu(clock=clock, power_w=lambda t: 70.0, energy_mj=lambda t: 70_000.0 * t)))
    sampler = Sampler(NvmlTelemetry(HANDLE), interval_s=3600, clock=clock)

    def sleep(seconds):  # five ticks, 0.1 s apart, while "sleeping"
        for _ in range(5):
            clock.t += seconds / 5
            sampler.tick()

    w = telemetry.idle_window(sampler, 0.5, sleep=sleep)
    idle = energy.idle_fields(w, 0.5)
    assert idle["idle_power_w"] == pytest.approx(70.0) and idle["idle_window_s"] == pytest.approx(0.5)
    assert idle["idle_energy_source"] == "nvml_energy_counter"


def test_counter_period_from_samples():
    # the counter changes at 0.0, 0.1, 0.2, 0.3 (sampled every 0.05): a 0.1 s period
    samples = [Sample(i * 0.05, energy_j=float(i // 2)) for i in range(8)]
    assert energy.counter_period_s(samples) == pytest.approx(0.1)


# --- host: RAPL and the timeline file ----------------------------------------------------------


def rapl_zone(root, name, zone_name, energy_uj, max_uj=1000):
    d = root / name
    d.mkdir()
    (d / "name").write_text(zone_name + "\n")
    (d / "energy_uj").write_text(f"{energy_uj}\n")
    (d / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return d


def test_rapl_sums_packages_counts_a_wrap_and_skips_subzones(tmp_path):
    p0 = rapl_zone(tmp_path, "intel-rapl:0", "package-0", 900)
    p1 = rapl_zone(tmp_path, "intel-rapl:1", "package-1", 100)
    rapl_zone(tmp_path, "intel-rapl:0:0", "core", 50)
    host = HostEnergy(tmp_path)
    assert host.available and [z.name for z in host.zones] == ["package-0", "package-1"]
    start = host.read()
    (p0 / "energy_uj").write_text("100\n")  # wrapped: 900 -> 1000 -> 0 -> 100 is 200 uJ
    (p1 / "energy_uj").write_text("400\n")  # 300 uJ
    assert host.joules_between(start, host.read()) == pytest.approx(500e-6)


def test_rapl_unreadable_gives_a_reason(tmp_path):
    d = rapl_zone(tmp_path, "intel-rapl:0", "package-0", 1)
    (d / "energy_uj").unlink()
    host = HostEnergy(tmp_path)
    assert not host.available and "not readable" in host.reason and host.read() is None
    assert "does not exist" in HostEnergy(tmp_path / "absent").reason


def test_timeline_rows(tmp_path):
    writer = TimelineWriter(tmp_path, "run", telemetry.SAMPLE_FIELDS[1:])
    writer.append(4, 1.0, 2.0, [Sample(0.9, power_w=100.0), Sample(1.5, power_w=300.0), Sample(2.1)])
    writer.close()
    lines = (tmp_path / "run.timeline.csv").read_text().splitlines()
    assert lines[0].startswith("seq,t_s,in_window,power_w,energy_j")
    assert lines[1].startswith("4,-0.100000,False,100.0,") and lines[2].startswith("4,0.500000,True,300.0,")
    assert lines[3].startswith("4,1.100000,False,,")


# --- the runner with telemetry -----------------------------------------------------------------


def telemetry_runner(cpu, tmp_path, tel, **kw):
    return Runner(cpu, RunWriter(tmp_path, "t1", {}), {"hostname": "h"}, telemetry=tel, sample_interval_s=0.01, **kw)


def fake_entry(**raw):
    w = Fake()
    return Entry(w, w.parse(raw), TimerConfig(warmup_s=0, min_time_s=0, min_reps=3, max_reps=3))


def test_runner_records_window_energy_from_nvml(use_nvml, cpu, tmp_path):
    use_nvml(scripted_pynvml(ScriptedGpu(clock=time.perf_counter, power_w=lambda t: 250.0,
                                         energy_mj=lambda t: 250_000.0 * t)))  # fmt: skip
    runner = telemetry_runner(cpu, tmp_path, NvmlTelemetry(HANDLE, min_window_s=0.25), idle_power_w=50.0)
    rec = runner.run_entry(0, fake_entry(work=1000))
    assert rec["status"] == "ok" and rec["n_samples"] == 3
    # the window was lengthened to 0.25 s with calls beyond max_reps; energy covers all of them
    assert rec["energy_window_s"] >= 0.25 and rec["energy_window_calls"] > 3
    assert rec["energy_source"] == "nvml_energy_counter" and rec["power_mean_w"] == pytest.approx(250.0, rel=5e-3)
    assert rec["energy_per_call_j"] == pytest.approx(rec["energy_j"] / rec["energy_window_calls"])
    assert rec["energy_per_token_j"] == pytest.approx(rec["energy_j"] / (1000 * rec["energy_window_calls"]))
    assert rec["energy_above_idle_j"] == pytest.approx(rec["energy_j"] - 50.0 * rec["energy_window_s"])
    assert 0 < rec["energy_timed_share"] < 1
    assert rec["health_change"] == "ok" and rec["n_telemetry_samples"] >= 5
    assert rec["power_limit_w"] == 700.0 and rec["clock_limited_share"] == 0.0
    assert check_record(rec) is None  # every telemetry field has its schema type


def test_runner_without_nvml_keeps_every_other_field(use_nvml, cpu, tmp_path):
    use_nvml(scripted_pynvml(None, init_error=pynvml.NVML_ERROR_DRIVER_NOT_LOADED))
    tel = telemetry.for_device(fake_gpu_device())
    rec = telemetry_runner(cpu, tmp_path, tel).run_entry(0, fake_entry())
    assert rec["status"] == "ok" and rec["n_samples"] == 3 and rec["tokens_per_s"] > 0 and rec["check_passed"]
    assert rec["energy_j"] is None and "Driver Not Loaded" in rec["energy_reason"]
    assert rec["telemetry_source"] == "none" and rec["health_change"] is None


def run_with_ecc_fault(use_nvml, cpu, tmp_path, register, errors: int, crash: bool) -> dict:
    """One measurement during which the card's uncorrected ECC count grows by `errors`; with
    `crash`, the workload also dies of it, as a CUDA error."""
    gpu = ScriptedGpu(clock=time.perf_counter)
    use_nvml(scripted_pynvml(gpu))

    class Faulty(Fake):
        id = "faulty"

        @contextlib.contextmanager
        def prepare(self, p, device, seed):
            gpu.health["ecc_uncorrected"] += errors  # double-bit errors while the workload runs
            if crash:
                raise RuntimeError("CUDA error: uncorrectable ECC error encountered")
            yield FakeCase(p)

    w = register(Faulty())
    e = Entry(w, w.parse({}), TimerConfig(warmup_s=0, min_time_s=0, min_reps=3, max_reps=3))
    return telemetry_runner(cpu, tmp_path, NvmlTelemetry(HANDLE, min_window_s=0.0)).run_entry(0, e)


def test_uncorrected_ecc_during_a_measurement_fails_the_record(use_nvml, cpu, tmp_path, register):
    rec = run_with_ecc_fault(use_nvml, cpu, tmp_path, register, errors=1, crash=False)
    assert rec["status"] == "failed" and rec["health_change"] == "fail"
    assert rec["reason"] == "card health: ecc_uncorrected +1 during this measurement"
    assert rec["check_passed"] is True and rec["energy_j"] is not None  # what was measured is kept


def test_a_telemetry_error_after_timing_keeps_the_measurement(use_nvml, cpu, tmp_path):
    use_nvml(scripted_pynvml(ScriptedGpu(clock=time.perf_counter)))
    runner = telemetry_runner(cpu, tmp_path, NvmlTelemetry(HANDLE, min_window_s=0.0))

    def disk_full(seq, window):
        raise OSError("No space left on device")

    runner.on_window = disk_full
    rec = runner.run_entry(0, fake_entry())
    assert rec["status"] == "ok" and rec["n_samples"] == 3 and rec["check_passed"]
    assert rec["energy_j"] is None and rec["energy_reason"] == "telemetry error: OSError: No space left on device"


def test_ecc_growth_is_reported_when_the_workload_itself_crashes(use_nvml, cpu, tmp_path, register):
    rec = run_with_ecc_fault(use_nvml, cpu, tmp_path, register, errors=2, crash=True)
    assert rec["status"] == "failed" and rec["health_change"] == "fail"
    assert rec["reason"] == (
        "RuntimeError: CUDA error: uncorrectable ECC error encountered; "
        "card health: ecc_uncorrected +2 during this measurement"
    )


def test_idle_on_the_cpu_uses_rapl(tmp_path):
    clock = FakeClock()
    zone = rapl_zone(tmp_path, "intel-rapl:0", "package-0", 1_000_000, max_uj=10**12)
    sampler = Sampler(NullTelemetry("the device is the CPU: no NVML"), host=HostEnergy(tmp_path), clock=clock)

    def sleep(seconds):
        clock.t += seconds
        (zone / "energy_uj").write_text(f"{1_000_000 + round(35e6 * seconds)}\n")  # 35 W

    idle = energy.idle_fields(telemetry.idle_window(sampler, 2.0, sleep=sleep), 2.0, host_is_device=True)
    assert idle["idle_power_w"] == pytest.approx(35.0) and idle["idle_energy_source"] == "rapl"
    assert idle["idle_cpu_power_w"] == pytest.approx(35.0)
