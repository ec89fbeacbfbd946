"""Each acceptance rule on hand-made records: what passes, what fails and why, what is not judged."""

from __future__ import annotations

import pytest

from bench.accept.rules import ThresholdsError, load_thresholds
from bench.accept.verdict import judge

TH = load_thresholds()


def rec(gpu: int = 0, workload: str = "gemm", status: str = "ok", **fields) -> dict:
    """A record from GPU `gpu` of node n1 (an H100), ok and checked unless told otherwise."""
    base = {"workload": workload, "status": status, "hostname": "n1", "gpu_index": gpu, "device": "cuda:0",
            "device_kind": "cuda", "device_name": "NVIDIA H100 80GB HBM3", "label": "8192x8192x8192 bf16",
            "param_m": 8192, "param_dtype": "bf16", "check_passed": status == "ok", "n_telemetry_samples": 50,
            "clock_event_shares": {"sw_power_cap": 0.4}, "health_change": "ok", "family": "gemm"}  # fmt: skip
    return {**base, **fields}


def findings(records, reference=None) -> dict[tuple[str, str], tuple[str, str]]:
    """{(gpu, rule): (verdict, detail)} over every node."""
    out = {}
    for nv in judge(records, TH, reference):
        for g in nv.gpus:
            out.update({(g.gpu, f.rule): (f.verdict, f.detail) for f in g.findings})
            out[(g.gpu, "verdict")] = (g.verdict, "")
        out.update({("node", f.rule): (f.verdict, f.detail) for f in nv.findings})
        out[("node", "verdict")] = (nv.verdict, nv.line())
    return out


def test_a_good_gpu_passes_every_rule_it_can_be_judged_on():
    copy = rec(workload="copy", family="memory", label="4096 MiB", frac_peak_bw=0.9, gb_per_s=3000)
    got = findings([rec(tflops=790.0, frac_peak_flops=0.80), copy])
    assert got[("GPU 0", "checks")][0] == got[("GPU 0", "gemm")][0] == got[("GPU 0", "bandwidth")][0] == "PASS"
    assert got[("GPU 0", "health")] == ("PASS", "no memory fault, no hardware slowdown")
    assert got[("GPU 0", "reference")][0] == got[("GPU 0", "outlier")][0] == "N/A"
    assert got[("node", "verdict")] == ("PASS", "node n1: PASS (1 of 1 GPU pass)")


def test_a_wrong_answer_fails_whatever_the_speed():
    bad = rec(status="failed", check_passed=False, tflops=950.0, frac_peak_flops=0.96,
              reason="output check failed: error 16.2 > tolerance 0.04 (max|C-C_ref|/rms(C_ref))")  # fmt: skip
    got = findings([bad])
    verdict, detail = got[("GPU 0", "checks")]
    assert verdict == "FAIL" and "1 measurement failed" in detail and "error 16.2 > tolerance" in detail
    assert got[("GPU 0", "verdict")][0] == "FAIL" and got[("node", "verdict")][0] == "FAIL"


@pytest.mark.parametrize("reason", ["hw_thermal_slowdown", "hw_slowdown", "hw_power_brake_slowdown"])
def test_a_hardware_slowdown_fails_and_power_capping_does_not(reason):
    got = findings([rec(clock_event_shares={"sw_power_cap": 0.9, reason: 0.12})])
    assert got[("GPU 0", "health")] == ("FAIL", f"{reason} in up to 12.0% of a window")
    assert findings([rec(clock_event_shares={"sw_power_cap": 0.9})])[("GPU 0", "health")][0] == "PASS"


def test_a_memory_fault_during_a_measurement_fails():
    got = findings([rec(health_change="fail", health_detail="ecc_uncorrected +1")])
    assert got[("GPU 0", "health")] == ("FAIL", "gemm 8192x8192x8192 bf16: ecc_uncorrected +1")


def test_gemm_under_its_share_of_peak_fails_naming_the_figure():
    got = findings([rec(tflops=600.0, frac_peak_flops=600 / 989)])
    verdict, detail = got[("GPU 0", "gemm")]
    assert verdict == "FAIL" and detail.startswith("8192x8192x8192 bf16: 60.7% of peak < 75.0% (600 tflops")
    # fp32 is not judged against the bf16 threshold
    assert findings([rec(param_dtype="fp32", frac_peak_flops=0.1)])[("GPU 0", "gemm")][0] == "N/A"


def test_without_a_peak_the_rule_says_why():
    got = findings([rec(device_name="AMD EPYC", frac_peak_flops=None, peak_reason="no catalog entry matches")])
    assert got[("GPU 0", "gemm")] == ("N/A", "no vendor peak for AMD EPYC: no catalog entry matches")


def test_reference_rule_by_hand():
    ref = [rec(tflops=t) for t in (780.0, 800.0, 790.0)]  # median 790; 90% of it is 711
    assert findings([rec(tflops=712.0)], ref)[("GPU 0", "reference")][0] == "PASS"
    verdict, detail = findings([rec(tflops=700.0)], ref)[("GPU 0", "reference")]
    assert verdict == "FAIL" and "700 TFLOP/s = 88.6%" in detail
    other = [rec(tflops=790.0, param_m=4096)]  # another configuration: nothing to compare
    assert findings([rec(tflops=700.0)], other)[("GPU 0", "reference")][0] == "N/A"


def test_a_gpu_under_its_nodes_median_is_an_outlier():
    records = [rec(gpu=i, tflops=t) for i, t in enumerate([800.0, 795.0, 805.0, 700.0])]  # median 797.5
    got = findings(records)
    assert got[("GPU 3", "outlier")][0] == "FAIL" and "12.2%" in got[("GPU 3", "outlier")][1]
    assert got[("GPU 0", "outlier")][0] == "PASS" and got[("GPU 0", "verdict")][0] == "PASS"
    assert got[("node", "verdict")] == ("FAIL", "node n1: FAIL (3 of 4 GPUs pass; failing: GPU 3)")


def test_collective_bus_bandwidth_against_the_fabric():
    def ar(busbw):
        return rec(workload="all_reduce", family="collective", bytes=1 << 30, busbw_gb_per_s=busbw, world_size=8)

    assert findings([ar(400.0)])[("node", "collective")][0] == "PASS"  # 400 of 450 GB/s: 88.9% >= 70%
    verdict, detail = findings([ar(300.0)])[("node", "collective")]
    assert verdict == "FAIL" and "= 66.7% of 450 GB/s (needs 70%)" in detail
    small = rec(workload="all_reduce", family="collective", bytes=1 << 20, busbw_gb_per_s=10.0)
    assert findings([small])[("node", "collective")][0] == "N/A"  # latency-bound sizes are not judged


def test_a_soak_that_loses_throughput_when_hot_fails():
    def soak(i, tflops):
        return rec(phase="soak", soak_interval=i, soak_interval_s=10.0, tflops=tflops)

    warm = findings([soak(i, t) for i, t in enumerate([800, 760, 700, 690])])  # steady 695 / 800 = 0.869
    assert warm[("GPU 0", "soak")][0] == "FAIL" and "steady/first 0.869" in warm[("GPU 0", "soak")][1]
    steady = findings([soak(i, t) for i, t in enumerate([800, 798, 801, 799])])
    assert steady[("GPU 0", "soak")][0] == "PASS"
    cpu = findings([soak(i, t) | {"device_kind": "cpu"} for i, t in enumerate([800, 400, 400, 400])])
    assert cpu[("GPU 0", "soak")][0] == "N/A"  # a shared host's load, not heat, moves a CPU's throughput


def test_soak_intervals_are_not_suite_measurements():
    soak = rec(phase="soak", soak_interval=0, soak_interval_s=10.0, tflops=100.0, frac_peak_flops=0.1)
    got = findings([soak, rec(tflops=790.0, frac_peak_flops=0.8)])
    assert got[("GPU 0", "gemm")][0] == "PASS"  # the soak's own GEMM is judged by the soak rule only


def test_thresholds_override_and_bad_files(tmp_path):
    mine = tmp_path / "mine.toml"
    mine.write_text("[gemm]\nmin_frac_peak = 0.5\n")
    th = load_thresholds(mine)
    assert th.gemm.min_frac_peak == 0.5 and th.gemm.dtypes == ["bf16"] and th.bandwidth.min_frac_peak == 0.8
    mine.write_text("[gemm]\nmin_frac_peak = 1.5\n")
    with pytest.raises(ThresholdsError, match=r"gemm.min_frac_peak: Input should be less than or equal to 1"):
        load_thresholds(mine)
    mine.write_text("[gemm]\nmin_frac_peek = 0.5\n")
    with pytest.raises(ThresholdsError, match=r"min_frac_peek: Extra inputs are not permitted"):
        load_thresholds(mine)
    mine.write_text("[gemm\n")
    with pytest.raises(ThresholdsError, match="not valid TOML"):
        load_thresholds(mine)
    with pytest.raises(ThresholdsError, match="cannot read"):
        load_thresholds(tmp_path / "missing.toml")
