"""What `tokenbench run` says: its title, its headline, JSON for machines, plurals, did-you-mean, predictions."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.measure import summary

RUN = ["run", "--device", "cpu", "--idle-s", "0", "--no-progress"]


def invoke(*args: str):
    return CliRunner().invoke(app, [*RUN, *args])


def test_one_entry_opens_with_a_title_and_closes_with_a_headline_in_the_singular(tmp_path, register):
    from tests.support.fakes import Fake

    register(Fake())
    result = invoke("-w", "fake", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    first = result.stderr.splitlines()[0]
    assert first.startswith("tokenbench run: fake (suite smoke) on ") and ": 1 entry; " in first
    assert "torch thread" in first  # the thread decision is said
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("done: fake (suite smoke) on ") and ": 1 record (1 ok, 0 skipped, 0 failed" in last
    assert "1 record in " in result.stdout and "1 records" not in result.stdout


def test_format_json_puts_only_the_summary_on_stdout(tmp_path, register):
    from tests.support.fakes import Fake

    register(Fake())
    result = invoke("-w", "fake:work=10", "-w", "fake:mode=wrong", "--format", "json", "--out", str(tmp_path))
    assert result.exit_code == 1  # a wrong answer fails the run, as in text
    doc = json.loads(result.stdout)
    assert doc["state"] == "complete" and doc["suite"] == "smoke" and doc["counts"] == {"ok": 1, "skipped": 0,
                                                                                         "failed": 1}  # fmt: skip
    assert [r["status"] for r in doc["records"]] == ["ok", "failed"] and doc["records"][1]["reason"]
    assert doc["host"]["host_cpus"] >= 1 and doc["records_path"].endswith(".jsonl")
    assert "FAILED: " in result.stderr  # the headline goes to stderr


def test_a_bad_format_is_refused():
    result = invoke("--format", "yaml")
    assert result.exit_code == 2 and "--format 'yaml': choose text or json" in result.stderr


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--suite", "smok"], "did you mean 'smoke'?"),
        (["-w", "gemm:mm=4"], "gemm: mm: unknown parameter; did you mean 'm'?"),
        (["-w", "atention"], "did you mean 'attention'?"),
    ],
)
def test_a_near_miss_is_named(args, said):
    result = invoke(*args)
    assert result.exit_code == 2 and said in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_an_entry_too_long_for_its_timer_is_skipped_with_its_prediction(tmp_path):
    # fp16 matmul on a CPU runs at a few GFLOP/s: 8192^3 takes minutes a call, the smoke timer allows 3.1 s
    result = invoke("-w", "gemm:m=8192,n=8192,k=8192,dtype=fp16", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    (line,) = [x for x in result.stdout.splitlines() if x.startswith("skipped: gemm 8192x8192x8192 fp16")]
    assert ": predicted " in line and "a call (1.1 TFLOP at" in line and "over the timer's limit of 3.1 s" in line
    assert "on the CPU: 1 of 1 entry predicted too long" in result.stderr  # smoke is no GPU suite: not said so
    assert "sized for a GPU" not in result.stderr and "predicted to take about" not in result.stderr
    record = json.loads(next(tmp_path.glob("*.jsonl")).read_text())
    assert record["status"] == "skipped" and record["predicted_call_s"] > 3.1


def rec(**fields):
    return {"status": "ok", "workload": "gemm", "label": "8x8x8 fp32", **fields}


def test_the_headline_counts_and_flags_by_hand():
    records = [
        rec(tflops=2.0, unstable=True),
        rec(tflops=3.0, label="16x16x16 fp32", contended=True),
        rec(workload="copy", label="1 MiB", gb_per_s=12.5),
        {"status": "skipped", "workload": "gemm", "label": "fp8", "reason": "no fp8"},
    ]
    line = summary.headline(records, "suite smoke", "cpu")
    assert line == ("done: suite smoke on cpu: 4 records (3 ok, 1 skipped, 0 failed; 2 flagged (1 noisy, 1 "
                    "contended)); best: gemm 3 TFLOP/s (16x16x16 fp32) ~, copy 12.5 GB/s (1 MiB)")  # fmt: skip
    assert summary.headline([], "suite smoke", "cpu", "interrupted") == (
        "interrupted: suite smoke on cpu: 0 records (0 ok, 0 skipped, 0 failed); nothing measured"
    )
    assert [summary.plural(n, "entry", "entries") for n in (0, 1, 2)] == ["0 entries", "1 entry", "2 entries"]


def test_a_gpu_sized_suite_on_the_cpu_is_named():
    from bench.measure.predict import Prediction

    preds = [Prediction(1.0, 30.0, 20.0, "too long"), Prediction(0.1, 1.0, 3.0), None]
    said = summary.gpu_sized_warning("node", "cpu", preds)
    assert said and "1 of 3 entries predicted too long" in said and "about 3 s" in said
    assert summary.gpu_sized_warning("node", "cuda", preds) is None
    assert summary.gpu_sized_warning("smoke", "cpu", preds[1:]) is None
    assert "sized for a GPU" not in (summary.gpu_sized_warning("smoke", "cpu", preds) or "sized for a GPU")
