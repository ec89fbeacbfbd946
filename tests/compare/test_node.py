"""The node summary: each GPU against its node's median, outliers and failures named."""

from __future__ import annotations

import pytest

from bench.compare.node import headline, summarize, summary_grid


def rec(gpu: int, value: float, host: str = "node-a", status: str = "ok", **kw) -> dict:
    where = {"hostname": host, "gpu_index": gpu, "gpu_uuid": f"GPU-{host}-{gpu}"}
    return {**where, "workload": "gemm", "label": "8192^3 bf16", "family": "gemm", "status": status, "tflops": value,
            "reason": None, **kw}  # fmt: skip


def test_a_gpu_more_than_5_percent_under_the_node_median_is_named():
    s = summarize([rec(0, 100.0), rec(1, 100.0), rec(2, 98.0), rec(3, 90.0)])
    # median of 100, 100, 98, 90 is 99; GPU 3: 1 - 90/99 = 9.09% under, GPU 2: 1.01% under
    assert [(f.gpu, round(f.shortfall, 4)) for f in s.outliers] == [("GPU 3", round(1 - 90 / 99, 4))]
    assert s.outliers[0].median == 99.0
    assert "OUTLIER: node-a GPU 3 (GPU-node-a-3): gemm 8192^3 bf16: 90 TFLOP/s, 9.1% under the node median 99" in (
        s.lines()
    )
    rows = {g.gpu: g for g in s.gpus}
    assert rows["GPU 2"].outliers == 0 and rows["GPU 2"].worst == pytest.approx(1 - 98 / 99)
    grid = summary_grid(s)
    assert grid.rows[3][4] == "-9.1%"


def test_each_node_against_its_own_median_and_a_lone_gpu_is_left_out():
    records = [rec(0, 100.0), rec(1, 94.0), rec(0, 50.0, host="node-b"), rec(1, 50.0, host="node-b"),
               rec(0, 10.0, host="single")]  # fmt: skip
    s = summarize(records, threshold=0.02)
    assert {g.node for g in s.gpus} == {"node-a", "node-b"}
    assert [(f.node, f.gpu) for f in s.outliers] == [("node-a", "GPU 1")]  # 1 - 94/97 = 3.1% under


def test_a_failed_record_is_named_whatever_its_speed():
    s = summarize([rec(0, 100.0), rec(1, 120.0, status="failed", reason="1 of 8192 values wrong")])
    assert [f.line() for f in s.failures] == [
        "FAILED: node-a GPU 1 (GPU-node-a-1): gemm 8192^3 bf16: 1 of 8192 values wrong"
    ]


def test_headline_figure_per_family():
    assert headline({"family": "collective", "busbw_gb_per_s": 310.0}) == (310.0, "GB/s busbw")
    assert headline({"family": "llm", "output_tokens_per_s": 5.0, "tokens_per_s": 9.0}) == (5.0, "tokens/s")
    assert headline({"family": "llm", "tokens_per_s": 9.0}) == (9.0, "tokens/s")
    assert headline({"family": "memory", "gb_per_s": 3000.0}) == (3000.0, "GB/s")
    assert headline({"family": "gemm", "tflops": True}) == (None, "TFLOP/s")  # not a number


def test_one_gpu_gives_no_summary():
    s = summarize([rec(0, 100.0)])
    assert s.gpus == [] and s.lines() == []


def test_work_the_ranks_do_together_is_not_compared_but_its_failures_are_named():
    coll = {"workload": "all_reduce", "family": "collective", "label": "1 MiB fp32"}
    records = [rec(0, 100.0), rec(1, 100.0), rec(0, None, busbw_gb_per_s=50.0, **coll),
               rec(1, None, busbw_gb_per_s=10.0, **coll),  # looks slow only because it arrived first
               rec(0, None, tokens_per_s=10.0, param_parallel="ddp", workload="train", family="llm"),
               rec(1, None, tokens_per_s=5.0, param_parallel="ddp", workload="train", family="llm"),
               rec(1, None, status="failed", reason="3 of 8192 values wrong", **coll)]  # fmt: skip
    s = summarize(records)
    assert s.outliers == [] and all(g.compared == 1 for g in s.gpus)
    assert [f.workload for f in s.failures] == ["all_reduce"]
