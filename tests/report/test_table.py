"""The results table and the notes under it: what a reader sees must match the record."""

from __future__ import annotations

from bench.report.table import _cv, fmt_frac, notes


def test_fmt_frac_never_shows_bandwidth_for_a_compute_workload():
    assert fmt_frac({"flops": 1.0, "frac_peak_flops": 0.5, "frac_peak_bw": 0.9}) == "50.0%"
    assert fmt_frac({"flops": 1.0, "frac_peak_flops": None, "frac_peak_bw": 0.9}) == "n/a"  # e.g. fp8 on A100
    assert fmt_frac({"flops": None, "frac_peak_flops": None, "frac_peak_bw": 0.25}) == "25.0%"


def test_cv_flag_only_on_unstable_ok_rows():
    stable = {"workload": "gemm", "status": "ok", "time_cv": 0.02, "unstable": False, "reason": None}
    shaky = {**stable, "time_cv": 0.2, "unstable": True}
    assert "!" not in _cv(stable) and "!" in _cv(shaky)
    assert "!" not in _cv({**shaky, "status": "failed"})
    assert not any(line.startswith("!") for line in notes([stable]))
    assert any(line.startswith("!") for line in notes([stable, shaky]))
