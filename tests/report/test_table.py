"""The results table and the notes under it: what a reader sees must match the record."""

from __future__ import annotations

from bench.report.table import _cv, notes, peak_fraction_text
from bench.text import (
    duration,
    headline_figure,
    integer,
    number,
    percent,
    percent_interval,
    percent_or_na,
    signed_percent,
    token_rate,
    usd,
    usd_compact,
    whole_percent,
)


def test_peak_fraction_never_shows_bandwidth_for_a_compute_workload():
    assert peak_fraction_text({"flops": 1.0, "frac_peak_flops": 0.5, "frac_peak_bw": 0.9}) == "50.0%"
    assert peak_fraction_text({"flops": 1.0, "frac_peak_flops": None, "frac_peak_bw": 0.9}) == "n/a"  # fp8 on A100
    assert peak_fraction_text({"flops": None, "frac_peak_flops": None, "frac_peak_bw": 0.25}) == "25.0%"


def test_cv_flag_only_on_unstable_ok_rows():
    stable = {"workload": "gemm", "status": "ok", "time_cv": 0.02, "unstable": False, "reason": None}
    shaky = {**stable, "time_cv": 0.2, "unstable": True}
    assert "!" not in _cv(stable) and "!" in _cv(shaky)
    assert "!" not in _cv({**shaky, "status": "failed"})
    assert not any(line.startswith("!") for line in notes([stable]))
    assert any(line.startswith("!") for line in notes([stable, shaky]))


def test_each_number_format_shows_what_its_tables_have_always_shown():
    """bench/text.py has one formatter per meaning; where two meanings differ in their text, both are kept."""
    assert [duration(1.8e-3), duration(1.0), duration(4.2e-8), duration(None), duration(float("nan"))] == [
        "1.8 ms", "1 s", "42 ns", "-", "-"]  # fmt: skip
    assert [number(610.8372), number(12345.6, 6), number(float("inf")), integer(2**30)] == [
        "610.8", "12345.6", "-", "1,073,741,824"]  # fmt: skip
    assert [number(127960.3, 5), number(99999.4, 5), number(12345.6)] == ["127,960", "99999", "12,346"]  # no 1.2796e+05
    # A missing fraction: "-" in the report, "n/a" in the results table (the catalog has no peak for the device)
    assert [percent(0.1234), percent(None)] == ["12.3%", "-"]
    assert [percent_or_na(0.1234), percent_or_na(None)] == ["12.3%", "n/a"]
    assert [whole_percent(0.6), signed_percent(0.052), signed_percent(-0.0)] == ["60%", "+5.2%", "-0.0%"]
    assert [percent_interval(0.01, 0.035), percent_interval(None, 0.1)] == ["[+1.0, +3.5]", "-"]
    assert [usd(1234.5), usd(0.2319, 4), usd_compact(0.23191), usd_compact(12.4)] == [
        "$1,234.50", "$0.2319", "$0.232", "$12.40"]  # fmt: skip
    # Token rates in the cost tables turn whole at 100, headline figures in the node summary at 1,000
    assert [token_rate(1557.4), token_rate(99.94), headline_figure(1557.4), headline_figure(99.94)] == [
        "1,557", "99.9", "1,557", "99.94"]  # fmt: skip


def test_the_collectives_table_has_a_rank_column_only_for_several_processes():
    from bench.report.table import collective_table

    one = {"workload": "all_reduce", "label": "32 KiB fp32", "status": "ok", "size_bytes": 32768, "n_samples": 5}
    alone = collective_table([one])
    assert str(alone.columns[0].header) == "workload"
    assert "rNone" not in str([c._cells for c in alone.columns])
    ranked = collective_table([{**one, "rank": 0, "gpu_index": 0}, {**one, "rank": 1, "gpu_index": 1}])
    assert str(ranked.columns[0].header) == "rank" and ranked.columns[0]._cells == ["r0 GPU 0", "r1 GPU 1"]


def test_records_skipped_for_one_reason_share_one_line():
    skipped = [{"workload": "gemm", "label": f"{n} fp8", "status": "skipped", "reason": "no fp8 here"}
               for n in range(6)]  # fmt: skip
    failed = {"workload": "copy", "label": "1 GiB", "status": "failed", "reason": "out of memory"}
    lines = notes([*skipped, failed])
    assert lines[:2] == [
        "skipped (6): gemm 0 fp8, gemm 1 fp8, gemm 2 fp8, gemm 3 fp8 and 2 more: no fp8 here",
        "failed: copy 1 GiB: out of memory",
    ]
