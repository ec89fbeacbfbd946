"""The report's answer first: the headline, noise marked in every format, the serve table and its plot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.catalog import prices
from bench.cli import app
from bench.report import columns
from bench.report.headline import headline
from bench.report.html import render
from bench.report.model import build
from bench.report.plots import _error_bars, serving
from bench.report.serve import load_point, load_short, per_gpu, slo_text
from bench.report.table import llm_table, notes
from bench.results.reader import read_runs
from tests.report.serve_records import NUM_PROMPTS, OUTPUT_LEN, serve_record, write_serve_run
from tests.support.handmade import write_run


def invoke(*args: str):
    return CliRunner().invoke(app, ["report", *args])


def serve_table(rep):
    return next(t for t in rep.tables if t.family == "serve")


@pytest.fixture
def served(tmp_path: Path) -> Path:
    write_serve_run(tmp_path)
    return tmp_path


def test_serve_table_rows_by_hand(served):
    rep = build(read_runs(served), prices.packaged())
    t = serve_table(rep)
    headers = [c.header for c in t.columns]
    for h in ("load", "req/s", "out tok/s", "tok/s/GPU", "tok/s/user", "TTFT p50", "TTFT p99", "TPOT p50",
              "TPOT p99", "goodput req/s", "SLO met", "failed"):  # fmt: skip
        assert h in headers, h
    assert [r["load_point"] for r in t.rows] == ["conc 1", "conc 8", "conc 64"]  # by concurrency, not as text
    conc8 = t.rows[1]
    duration = NUM_PROMPTS / 8 * (0.08 + 0.02 * (OUTPUT_LEN - 1))  # 513.5 s: 25 waves of one E2EL each
    assert conc8["tokens_per_s_per_gpu"] == pytest.approx(NUM_PROMPTS * OUTPUT_LEN / duration)  # 398.8
    shown = dict(zip(headers, t.grid().rows[1], strict=True))
    assert shown["tok/s/user"] == "50" and shown["TPOT p50"] == "20 ms" and shown["TTFT p99"] == "80 ms"
    assert (
        shown["SLO met"] == "yes 100.0%" and dict(zip(headers, t.grid().rows[2], strict=True))["SLO met"] == "no 0.0%"
    )


def test_load_point_names():
    assert load_point({"param_max_concurrency": 64, "param_request_rate": None}) == "conc 64"
    assert load_point({"param_max_concurrency": None, "param_request_rate": 5}) == "rate 5/s"
    assert load_point({"param_max_concurrency": 8, "param_request_rate": 2.5}) == "rate 2.5/s, conc 8"
    assert load_point({}) == "rate inf" and load_short({"param_max_concurrency": 64}) == "c64"
    assert per_gpu({"output_tokens_per_s": 1000.0, "num_gpus": 4}) == 250.0  # no per-GPU field: divided
    assert per_gpu({"output_tokens_per_s_per_gpu": 300.0, "output_tokens_per_s": 1000.0}) == 300.0
    assert slo_text({"slo_met": None}) == "-" and slo_text({"slo_met": True, "slo_attainment": 0.995}) == "yes 99.5%"


def test_headline_names_the_best_serve_point_within_the_slo_and_the_missed_one(served):
    rep = build(read_runs(served), prices.packaged())
    assert rep.headline.startswith("3 records (3 ok) from 1 run on gpu-node (NVIDIA H200)")
    # conc 64 has more tok/s per GPU (510.9) but missed the SLO: the best within it is conc 8
    assert "serve 398.8 output tok/s per GPU within the SLO (conc 8, 1024/1024 random)" in rep.headline
    assert "warnings: 1 load point missed the SLO" in rep.headline


def test_headline_plurals_and_warnings_by_hand(tmp_path):
    one = serve_record("r1", 0, 4, 0.02, 0.1, client_limited=True, client_limited_reason="event-loop lag 40 ms")
    line = headline(["complete"], [one])
    assert line.startswith("1 record (1 ok) from 1 run on gpu-node (NVIDIA H200)")
    assert "serve " in line and "^ output tok/s per GPU" in line  # the best figure keeps its mark
    assert "warnings: 1 record client-limited (^)" in line
    two = [one, {**one, "seq": 1, "status": "failed", "reason": "failure rate 0.5 > 0.05"}]
    assert "warnings: 1 record failed, 1 record client-limited (^)" in headline(["complete", "interrupted"], two)
    assert "1 run not complete" in headline(["complete", "interrupted"], two)
    assert headline(["complete"], []) == "1 run with no records"


def test_noise_and_contention_are_marked_in_terminal_markdown_and_html(tmp_path):
    write_run(tmp_path, "busy-node", unstable=True, contended=True, contention_reason="load average 5.1 on 2 CPUs")
    rep = build(read_runs(tmp_path), prices.packaged())
    llm = next(t for t in rep.tables if t.family == "llm")
    assert {"median", "CV", "n"} <= {c.header for c in llm.columns}  # LLM tables show the noise too
    md = invoke(str(tmp_path), "--format", "md").output
    gemm = next(ln for ln in md.splitlines() if ln.startswith("| busy-node") and "8192x8192x8192" in ln)
    assert re.search(r"\| 1\.8 ms\\~ \| \d+\.\d%! \| 40 \|", gemm), gemm  # "~" escaped: no strikethrough
    assert "- ! CV above the suite's threshold, or fewer samples than its minimum (6 records)" in md
    assert "- \\~ contended: the host was busy while 6 records ran" in md and "load average 5.1 on 2 CPUs" in md
    assert "warnings: 6 records noisy (CV !), 6 records on a busy host (\\~)" in md
    assert "best: gemm 610.8!\\~ TFLOP/s" in md  # the best figure keeps its record's marks
    terminal = invoke(str(tmp_path)).output
    assert "1.8 ms~" in terminal and "%!" in terminal and terminal.startswith("6 records (6 ok) from 1 run")
    page = render(rep, plots=[])
    assert 'class="num marked">1.8 ms~</td>' in page and "contended: the host was busy" in page
    assert '<p class="headline" id="headline">6 records (6 ok) from 1 run' in page


def test_a_quiet_record_has_no_mark_and_no_legend(tmp_path):
    write_run(tmp_path, "quiet", unstable=False, contended=False)
    rep = build(read_runs(tmp_path), prices.packaged())
    text = "\n".join("|".join(row) for t in rep.tables for row in t.grid().rows)
    assert "~" not in text and "!" not in text
    assert not columns.legend(rep.records) and "no warnings" in rep.headline


def test_the_run_table_marks_contention_and_shows_n_for_llm_records():
    rec = {"workload": "decode", "label": "tiny b1", "status": "ok", "time_median_s": 0.0045, "time_cv": 0.02,
           "n_samples": 96, "unstable": False, "contended": True,
           "contention_reason": "CPU time 0.4 of wall"}  # fmt: skip
    table = llm_table([rec])
    assert [c.header for c in table.columns][3:6] == ["median", "CV", "n"]
    assert table.columns[3]._cells == ["[yellow]4.5 ms~[/]"] and table.columns[5]._cells == ["96"]
    assert any(n.startswith("~ contended") and "CPU time 0.4 of wall" in n for n in notes([rec]))


def test_serving_plot_draws_one_line_per_run_and_says_why_when_empty(served, tmp_path):
    rep = build(read_runs(served), prices.packaged())
    plot = serving(rep.records)
    assert plot.svg is not None and b"c64" in plot.svg and b"tok" in plot.svg
    empty = serving([])
    assert empty.svg is None and empty.reason == "no serve load point with tokens/s per user and per GPU"


def test_error_bars_are_the_rate_at_the_p95_and_p5_times():
    # 100 tokens/s at a 10 ms median; p5 8 ms -> 125/s, p95 20 ms -> 50/s: bars 50 below and 25 above
    rows = [{"time_median_s": 0.010, "time_p5_s": 0.008, "time_p95_s": 0.020}, {"time_median_s": 0.01}]
    lo, hi = _error_bars(rows, [100.0, 100.0]) or ([], [])
    assert lo == pytest.approx([50.0, 0.0]) and hi == pytest.approx([25.0, 0.0])
    assert _error_bars([{"time_median_s": 0.01}], [100.0]) is None


def test_the_headline_counts_a_nodes_cpu_once_however_many_ranks_shared_it():
    from bench.report.headline import machines

    ranks = [{"hostname": "vm", "device_kind": "cpu", "device": "cpu", "device_name": "AMD EPYC", "rank": r}
             for r in range(9)]  # fmt: skip
    assert machines(ranks) == "vm (AMD EPYC)"
    gpus = [{"hostname": "n", "device_kind": "cuda", "device_name": "H100", "gpu_index": i} for i in range(2)]
    assert machines(gpus) == "n (2x H100)"
