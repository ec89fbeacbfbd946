"""compare and the host's state: a record measured on a busy host (`contended`) is never more than WARN, and on the
CPU runs with different torch thread counts are not compared unless --allow-different-devices."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.compare.model import Thresholds, compare
from bench.compare.report import lines
from bench.results.reader import read_runs
from tests.support.handmade import CONFIGS, write_run

GEMM = CONFIGS[0][2]
XEON = "Intel(R) Xeon(R) Processor"
BUSY = "other processes used 1.62 of 2 CPUs during the window, with 2 threads to run"
QUIET_BUSY = "load average 3.10 on 2 CPUs during the window, with 1 thread to run"


def by_label(result) -> dict:
    return {c.config: c for c in result.comparisons}


def cpu_run(out: Path, seed: int, threads: int | None = 2, header_threads: int | None = None, **over) -> Path:
    """A CPU run of every configuration; `threads` in each record, `header_threads` in the header's environment."""
    env = {"device_name": XEON, **({"torch_num_threads": header_threads} if header_threads else {})}
    fields = {"torch_threads": threads} if threads is not None else {}
    return write_run(out, "vm", seed=seed, device="cpu", device_kind="cpu", device_name=XEON, gpu_uuid=None, env=env,
                     **fields, **over)  # fmt: skip


# --- contended records ---------------------------------------------------------------------------


def test_a_contended_candidate_343pct_slower_is_warn_naming_the_side_and_the_contention(tmp_path):
    cpu_run(tmp_path / "base", 0, contended=False, contention_reason=None)
    cpu_run(tmp_path / "cand", 1, slowdown={GEMM: 3.43}, contended=True, contention_reason=BUSY)
    result = compare(read_runs(tmp_path / "base"), read_runs(tmp_path / "cand"))
    gemm = by_label(result)[GEMM]
    assert gemm.change == pytest.approx(3.43)  # 4.43 x the median / the median - 1: measured, shown as it is
    assert gemm.ci_low > 0.05  # the interval alone would FAIL it
    assert gemm.verdict == "WARN" and gemm.severity == "WARN" and gemm.contended == ["candidate"]
    assert gemm.why == (f"candidate measured on a busy host ({BUSY}): at most WARN (else FAIL: slower by more than 5% "
                        "beyond the noise)")  # fmt: skip
    # the unchanged configurations are WARN too: a busy host's times are not the code's alone
    others = [c for c in result.comparisons if c.config != GEMM]
    assert {c.verdict for c in others} == {"WARN"}
    assert all(c.why == f"candidate measured on a busy host ({BUSY})" for c in others)
    assert result.verdict == "WARN" and result.exit_code == 0
    assert ("note: 6 configurations measured on a busy host (contended records: candidate 6): at most WARN"
            in "\n".join(lines(result)))  # fmt: skip


def test_the_json_output_says_which_side_was_busy(tmp_path):
    cpu_run(tmp_path / "base", 0, contended=True, contention_reason=QUIET_BUSY, skip=tuple(c[2] for c in CONFIGS[1:]))
    cpu_run(tmp_path / "cand", 1, slowdown=-0.30, skip=tuple(c[2] for c in CONFIGS[1:]))
    out = CliRunner().invoke(app, ["compare", str(tmp_path / "base"), str(tmp_path / "cand"), "--format", "json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    (row,) = data["comparisons"]
    assert row["change"] == pytest.approx(-0.30)  # faster, on a quiet host, than a busy baseline: still WARN
    assert row["verdict"] == "WARN" and row["contended"] == ["baseline"]
    assert row["why"] == f"baseline measured on a busy host ({QUIET_BUSY})"
    assert any(n.startswith("1 configuration measured on a busy host (contended records: baseline 1)")
               for n in data["notes"])  # fmt: skip
    assert data["verdict"] == "WARN" and data["exit_code"] == 0 and data["compared"] == 1


def test_both_sides_busy_names_both_and_a_pooled_side_counts_its_records(tmp_path):
    cpu_run(tmp_path / "base", 0, contended=True, contention_reason=BUSY)
    cpu_run(tmp_path / "cand", 1, contended=True, contention_reason=QUIET_BUSY)
    cpu_run(tmp_path / "cand", 2, contended=False)  # a second candidate run of the same CPU: pooled with the first
    gemm = by_label(compare(read_runs(tmp_path / "base"), read_runs(tmp_path / "cand")))[GEMM]
    assert gemm.verdict == "WARN" and gemm.contended == ["baseline", "candidate"]
    assert gemm.why == (f"both sides measured on a busy host (baseline: {BUSY}; candidate: 1 of 2 records, first: "
                        f"{QUIET_BUSY})")  # fmt: skip


def test_a_failed_contended_candidate_still_fails(tmp_path):
    cpu_run(tmp_path / "base", 0)
    cpu_run(tmp_path / "cand", 1, status="failed", reason="check: max error 3.1 > 0.01", contended=True,
            contention_reason=BUSY)  # fmt: skip
    result = compare(read_runs(tmp_path / "base"), read_runs(tmp_path / "cand"))
    assert {c.verdict for c in result.comparisons} == {"FAIL"}  # a wrong answer is not excused by a busy host


def test_quiet_records_are_judged_as_before(tmp_path):
    cpu_run(tmp_path / "base", 0, contended=False, contention_reason=None)
    cpu_run(tmp_path / "cand", 1, slowdown={GEMM: 0.10}, contended=False, contention_reason=None)
    result = compare(read_runs(tmp_path / "base"), read_runs(tmp_path / "cand"))
    assert by_label(result)[GEMM].verdict == "FAIL" and result.exit_code == 1
    assert all(c.contended == [] for c in result.comparisons)
    assert not any("busy host" in line for line in lines(result))


# --- torch threads on the CPU ----------------------------------------------------------------------


def test_different_torch_threads_on_the_cpu_are_skip_rows_with_the_reason(tmp_path):
    cpu_run(tmp_path / "base", 0, threads=2)
    cpu_run(tmp_path / "cand", 1, threads=1, slowdown={GEMM: 0.83})
    result = compare(read_runs(tmp_path / "base"), read_runs(tmp_path / "cand"))
    assert {c.verdict for c in result.comparisons} == {"SKIP"} and len(result.comparisons) == len(CONFIGS)
    why = ("baseline ran 2 torch threads, candidate 1 on the CPU: different CPU thread counts are compared only with "
           "--allow-different-devices")  # fmt: skip
    assert all(c.why == why and c.threads_differ and not c.devices_differ for c in result.comparisons)
    assert result.exit_code == 2 and result.nothing_compared() == f"nothing compared: {why} (6 configurations)"
    text = "\n".join(lines(result))
    assert ("note: 6 configurations not compared: measured with different torch thread counts on the CPU "
            "(--allow-different-devices compares them)") in text  # fmt: skip
    cli = CliRunner().invoke(app, ["compare", str(tmp_path / "base"), str(tmp_path / "cand")])
    assert cli.exit_code == 2 and cli.output.startswith(f"tokenbench: error: nothing compared: {why}")


def test_allowed_the_threads_are_compared_and_the_row_says_they_differ(tmp_path):
    cpu_run(tmp_path / "base", 0, threads=2)
    cpu_run(tmp_path / "cand", 1, threads=1, slowdown={GEMM: 0.83})
    result = compare(
        read_runs(tmp_path / "base"), read_runs(tmp_path / "cand"), Thresholds(allow_different_devices=True)
    )
    gemm = by_label(result)[GEMM]
    assert gemm.verdict == "FAIL" and gemm.change == pytest.approx(0.83) and gemm.threads_differ
    assert gemm.why == "torch threads differ: baseline 2, candidate 1; slower by more than 5% beyond the noise"
    assert ("note: 6 configurations compared across torch thread counts on the CPU (--allow-different-devices)"
            in "\n".join(lines(result)))  # fmt: skip
    cli = CliRunner().invoke(app, ["compare", str(tmp_path / "base"), str(tmp_path / "cand"),
                                   "--allow-different-devices"])  # fmt: skip
    assert cli.exit_code == 1


def test_the_run_headers_threads_stand_in_for_older_records(tmp_path):
    cpu_run(tmp_path / "base", 0, threads=None, header_threads=2)
    cpu_run(tmp_path / "cand", 1, threads=None, header_threads=1)
    assert {c.verdict for c in compare(read_runs(tmp_path / "base"), read_runs(tmp_path / "cand")).comparisons} == {
        "SKIP"
    }
    cpu_run(tmp_path / "same", 2, threads=None, header_threads=2)
    result = compare(read_runs(tmp_path / "base"), read_runs(tmp_path / "same"))
    assert {c.verdict for c in result.comparisons} == {"PASS"}


def test_a_baseline_of_both_thread_counts_is_matched_on_the_candidates(tmp_path):
    cpu_run(tmp_path / "base", 0, threads=2)
    cpu_run(tmp_path / "base", 3, threads=1, slowdown=0.8)  # far slower: it must not join the pool
    cpu_run(tmp_path / "cand", 1, threads=2)
    result = compare(read_runs(tmp_path / "base"), read_runs(tmp_path / "cand"))
    assert {c.verdict for c in result.comparisons} == {"PASS"}
    assert {c.baseline_records for c in result.comparisons} == {1}
    assert not any(c.threads_differ for c in result.comparisons)


def test_on_a_gpu_the_thread_count_does_not_matter(tmp_path):
    write_run(tmp_path / "base", "ref", torch_threads=8)
    write_run(tmp_path / "cand", "node", seed=1, torch_threads=1)
    result = compare(read_runs(tmp_path / "base"), read_runs(tmp_path / "cand"))
    assert {c.verdict for c in result.comparisons} == {"PASS"} and result.exit_code == 0
    assert not any(c.threads_differ for c in result.comparisons)
