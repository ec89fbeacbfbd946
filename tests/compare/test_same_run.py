"""compare on identical sides, on noisy sides, and when nothing could be compared: the CV rule names the sides, a
copy of a run is no change, and "nothing compared" is said the same way in the table, Markdown and JSON."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.compare.model import compare
from bench.compare.report import grids, lines, markdown, tables
from bench.results.reader import read_runs
from tests.support.handmade import CONFIGS, write_run

GEMM = CONFIGS[0][2]


def by_label(result) -> dict:
    return {c.config: c for c in result.comparisons}


def test_a_byte_identical_copy_passes_with_no_change_and_the_noise_noted(tmp_path):
    write_run(tmp_path / "a", "vm", noise=0.10, n=20)  # CV about 10%: every record unstable
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    out = CliRunner().invoke(app, ["compare", str(tmp_path / "a"), str(tmp_path / "b")])
    assert out.exit_code == 0, out.output
    result = compare(read_runs(tmp_path / "a"), read_runs(tmp_path / "b"))
    assert {c.verdict for c in result.comparisons} == {"PASS"} and result.verdict == "PASS"
    for c in result.comparisons:
        assert c.change == 0.0 and c.noisy == ["baseline", "candidate"]
        assert c.why == "identical samples on both sides: no change (CV above the threshold on both sides)"
    (run,) = read_runs(tmp_path / "a")
    assert f"note: the same run on both sides ({run.header['run_id']}; a copy?)" in "\n".join(lines(result))


def test_identical_quiet_samples_pass_and_say_so(tmp_path):
    write_run(tmp_path / "a", "vm")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    result = compare(read_runs(tmp_path / "a"), read_runs(tmp_path / "b"))
    assert {c.why for c in result.comparisons} == {"identical samples on both sides: no change"}


def test_identical_but_busy_samples_pass_with_the_contention_noted(tmp_path):
    busy = "load average 3.10 on 2 CPUs during the window, with 2 threads to run"
    write_run(tmp_path / "a", "vm", contended=True, contention_reason=busy)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    gemm = by_label(compare(read_runs(tmp_path / "a"), read_runs(tmp_path / "b")))[GEMM]
    assert gemm.verdict == "PASS" and gemm.contended == ["baseline", "candidate"]
    assert gemm.why == (f"identical samples on both sides: no change (both sides measured on a busy host (baseline: "
                        f"{busy}; candidate: {busy}))")  # fmt: skip


def test_equal_medians_of_different_noisy_samples_still_warn_naming_both_sides(tmp_path):
    write_run(tmp_path / "a", "vm", noise=0.10, n=20, seed=0)
    write_run(tmp_path / "b", "vm", noise=0.10, n=20, seed=1)
    gemm = by_label(compare(read_runs(tmp_path / "a"), read_runs(tmp_path / "b")))[GEMM]
    assert gemm.change == pytest.approx(0.0, abs=1e-12)  # medians exact by construction, samples differ
    assert gemm.verdict == "WARN" and gemm.why == "CV above the threshold on both sides: the medians are noisy"


@pytest.mark.parametrize("noisy_side", ["baseline", "candidate"])
def test_a_cv_above_the_threshold_on_one_side_names_that_side(tmp_path, noisy_side):
    write_run(tmp_path / "baseline", "vm", noise=0.10 if noisy_side == "baseline" else 0.01, n=20, seed=0)
    write_run(tmp_path / "candidate", "vm", noise=0.10 if noisy_side == "candidate" else 0.01, n=20, seed=1)
    gemm = by_label(compare(read_runs(tmp_path / "baseline"), read_runs(tmp_path / "candidate")))[GEMM]
    assert gemm.verdict == "WARN" and gemm.noisy == [noisy_side]
    assert gemm.why == f"CV above the threshold on the {noisy_side}: the medians are noisy"


def test_nothing_compared_reads_the_same_in_table_markdown_and_json(tmp_path):
    write_run(tmp_path / "base", "ref")
    write_run(tmp_path / "cand", "node", seed=1, workload_version=2)  # nothing measured on both sides
    result = compare(read_runs(tmp_path / "base"), read_runs(tmp_path / "cand"))
    assert result.exit_code == 2 and result.verdict == "nothing compared"
    assert [g.verdict for g in result.gpus] == ["nothing compared"]
    per_gpu = grids(result)[1]
    assert per_gpu.rows[0][per_gpu.columns.index("verdict")] == "nothing compared"
    notes = [line for line in lines(result) if line.startswith("note: ")]
    assert "note: node cuda:0 GPU-node-0: nothing compared (no configuration measured on both sides)" in notes
    assert not any("FAIL" in n for n in notes)
    md = markdown(result)
    assert "| nothing compared |" in md
    assert not any(line.startswith("- note:") and "FAIL" in line for line in md.splitlines())
    out = CliRunner().invoke(app, ["compare", str(tmp_path / "base"), str(tmp_path / "cand"), "--format", "json"])
    assert out.exit_code == 2
    data = json.loads(out.output[out.output.index("{") :])  # after the reason on the first line
    assert data["verdict"] == "nothing compared" and data["gpus"][0]["verdict"] == "nothing compared"
    assert data["compared"] == 0 and data["exit_code"] == 2
    for width in (80, 160):  # the verdict stays whole in a narrow terminal's compact table too
        from rich.console import Console

        console = Console(width=width, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
        for table in tables(result, width)[0]:
            console.print(table)
        row = next(line for line in console.export_text().splitlines() if "H100" in line)  # the per-GPU row
        assert "nothing compared" in row and "FAIL" not in row


def test_a_gpu_with_nothing_compared_beside_compared_ones_fails_and_says_why(tmp_path):
    write_run(tmp_path / "base", "ref")
    write_run(tmp_path / "cand", "node", gpu=0, seed=1)
    write_run(tmp_path / "cand", "node", gpu=1, seed=2, workload_version=2)
    result = compare(read_runs(tmp_path / "base"), read_runs(tmp_path / "cand"))
    assert [g.verdict for g in result.gpus] == ["PASS", "FAIL"] and result.exit_code == 1
    assert ("note: node cuda:1 GPU-node-1: nothing compared (no configuration measured on both sides): FAIL, since "
            "other GPUs were compared") in lines(result)  # fmt: skip


def test_rows_without_samples_are_nothing_compared(tmp_path):
    write_run(tmp_path / "base", "ref", samples_s=[])
    write_run(tmp_path / "cand", "node", seed=1, samples_s=[])
    result = compare(read_runs(tmp_path / "base"), read_runs(tmp_path / "cand"))
    assert {c.verdict for c in result.comparisons} == {"WARN"} and result.exit_code == 2
    assert result.nothing_compared().startswith("nothing compared: no samples to compare")
    assert result.verdict == "nothing compared"
