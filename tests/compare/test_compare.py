"""compare: deltas, intervals and verdicts on hand-made result sets, per-GPU verdicts, the CLI's exit codes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.compare.model import Thresholds, compare
from bench.results.reader import read_runs
from tests.support.handmade import CONFIGS, H100, geomean, write_run

GEMM = CONFIGS[0][2]
LABELS = [c[2] for c in CONFIGS]


def invoke(*args: str):
    return CliRunner().invoke(app, ["compare", *args])


def by_label(result) -> dict[str, object]:
    return {c.config: c for c in result.comparisons}


def pair(tmp_path: Path, base: dict, cand: dict) -> tuple[Path, Path]:
    b, c = tmp_path / "base", tmp_path / "cand"
    write_run(b, "ref", **base)
    write_run(c, "node", **{"seed": 1, **cand})
    return b, c


def test_identical_medians_pass_with_a_zero_change(tmp_path):
    b, c = pair(tmp_path, {}, {})
    result = compare(read_runs(b), read_runs(c))
    assert result.verdict == "PASS" and result.exit_code == 0
    for item in result.comparisons:
        assert item.verdict == "PASS"
        assert item.change == pytest.approx(0.0, abs=1e-12)  # medians are exact by construction
        assert item.ci_low <= 0.0 <= item.ci_high


def test_a_3pct_slowdown_inside_the_noise_passes(tmp_path):
    # 4% spread, 12 samples a side: CV under the 5% threshold, so the records are trusted, but the
    # interval of the change in median is wider than 3% and holds zero
    b, c = pair(tmp_path, {"noise": 0.04, "n": 12}, {"noise": 0.04, "n": 12, "slowdown": {GEMM: 0.03}})
    item = by_label(compare(read_runs(b), read_runs(c)))[GEMM]
    assert item.change == pytest.approx(0.03)  # 1.03 x median / median - 1
    assert item.ci_low < 0 < item.ci_high  # the noise covers it
    assert item.verdict == "PASS"


def test_noisy_records_warn_even_when_unchanged(tmp_path):
    b, c = pair(tmp_path, {"noise": 0.10, "n": 20}, {"noise": 0.10, "n": 20})
    item = by_label(compare(read_runs(b), read_runs(c)))[GEMM]
    assert item.change == pytest.approx(0.0, abs=1e-12)
    assert item.verdict == "WARN" and item.why == "CV above the threshold on both sides: the medians are noisy"


def test_a_clear_10pct_slowdown_fails(tmp_path):
    b, c = pair(tmp_path, {}, {"slowdown": {GEMM: 0.10}})
    result = compare(read_runs(b), read_runs(c))
    item = by_label(result)[GEMM]
    assert item.change == pytest.approx(0.10)
    assert 0.05 < item.ci_low <= 0.10 <= item.ci_high
    assert item.verdict == "FAIL" and "beyond the noise" in item.why
    assert result.verdict == "FAIL" and result.exit_code == 1
    assert all(c.verdict == "PASS" for c in result.comparisons if c.config != GEMM)


def test_a_clear_3pct_slowdown_warns_inside_the_allowance(tmp_path):
    b, c = pair(tmp_path, {}, {"slowdown": {GEMM: 0.03}})
    result = compare(read_runs(b), read_runs(c))
    assert by_label(result)[GEMM].verdict == "WARN"
    assert result.verdict == "WARN" and result.exit_code == 0


def test_thresholds_are_the_users(tmp_path):
    b, c = pair(tmp_path, {}, {"slowdown": {GEMM: 0.10}})
    lenient = compare(read_runs(b), read_runs(c), Thresholds(fail=0.20, warn=0.15))
    assert by_label(lenient)[GEMM].verdict == "PASS"


def test_a_faster_candidate_passes(tmp_path):
    b, c = pair(tmp_path, {}, {"slowdown": -0.2})
    result = compare(read_runs(b), read_runs(c))
    assert {c.verdict for c in result.comparisons} == {"PASS"}
    assert all(c.change == pytest.approx(-0.2) for c in result.comparisons)


def test_a_missing_workload_is_reported_not_ignored(tmp_path):
    b, c = pair(tmp_path, {}, {"skip": (GEMM,)})
    result = compare(read_runs(b), read_runs(c))
    item = by_label(result)[GEMM]
    assert item.verdict == "MISSING" and item.why == "no record in the candidate"
    assert result.verdict == "FAIL"
    soft = compare(read_runs(b), read_runs(c), Thresholds(missing_fails=False))
    assert by_label(soft)[GEMM].verdict == "MISSING" and soft.verdict == "WARN" and soft.exit_code == 0


def test_a_failed_candidate_record_fails_whatever_its_speed(tmp_path):
    b, c = pair(tmp_path, {}, {"status": "failed", "reason": "check: max error 3.1 > 0.01"})
    result = compare(read_runs(b), read_runs(c))
    assert {c.verdict for c in result.comparisons} == {"FAIL"}
    assert "candidate failed: check: max error" in result.comparisons[0].why


def test_new_configurations_are_listed_and_do_not_fail(tmp_path):
    b, c = pair(tmp_path, {"skip": (GEMM,)}, {})
    result = compare(read_runs(b), read_runs(c))
    assert by_label(result)[GEMM].verdict == "NEW" and result.verdict == "PASS"


def test_different_workload_versions_are_not_compared(tmp_path):
    b, c = pair(tmp_path, {}, {"workload_version": 2})
    result = compare(read_runs(b), read_runs(c))
    assert {c.verdict for c in result.comparisons} == {"MISSING"}
    assert all("not comparable" in c.why and c.change is None for c in result.comparisons)
    # nothing was compared on the GPU: no pass, even though no figure got slower, and exit 2 (not a
    # regression to gate on: nothing could be compared); the GPU's verdict says so, not FAIL
    assert result.gpus[0].compared == 0 and result.gpus[0].verdict == "nothing compared" and result.exit_code == 2
    assert result.verdict == "nothing compared"


def test_a_run_compared_with_itself_stops_first_with_the_reason(tmp_path):
    b, _ = pair(tmp_path, {}, {})
    result = invoke(str(b), str(b))
    assert result.exit_code == 2 and result.output.startswith("tokenbench: error: baseline and candidate are the same")


def test_runs_with_nothing_in_common_exit_2_with_the_reason(tmp_path):
    b, c = pair(tmp_path, {}, {"workload_version": 2})
    result = invoke(str(b), str(c))
    assert result.exit_code == 2
    printed = result.output.strip().splitlines()
    assert printed[0].startswith("tokenbench: error: nothing compared: no configuration was measured in both")
    assert "(6 configurations on one side only or of another workload version)" in printed[0]
    assert printed[-1].startswith("verdict: nothing compared: 6 configurations on 1 GPU, candidate ")
    assert printed[-1].endswith(": 6 MISSING")


def test_a_baseline_with_both_versions_is_matched_on_the_candidates(tmp_path):
    write_run(tmp_path / "base", "ref", workload_version=2, seed=4)
    write_run(tmp_path / "base", "ref2")
    write_run(tmp_path / "cand", "node", workload_version=2, seed=5)
    result = compare(read_runs(tmp_path / "base"), read_runs(tmp_path / "cand"))
    assert {c.verdict for c in result.comparisons} == {"PASS"}
    assert {c.baseline_records for c in result.comparisons} == {1}  # only the version-2 records


def test_numbers_and_nulls_in_parameters_match_as_values(tmp_path):
    write_run(tmp_path / "base", "ref")
    write_run(tmp_path / "cand", "node", seed=1, param_m=8192.0, param_extra=None)
    result = compare(read_runs(tmp_path / "base"), read_runs(tmp_path / "cand"))
    assert by_label(result)[GEMM].verdict == "PASS"


def test_a_baseline_that_only_skipped_a_configuration_says_so(tmp_path):
    b, c = pair(tmp_path, {"status": "skipped", "reason": "fp8 needs compute capability 8.9"}, {})
    result = compare(read_runs(b), read_runs(c))
    item = by_label(result)[GEMM]
    assert item.verdict == "NEW" and "the baseline has no ok record (skipped: fp8 needs" in item.why
    # nothing was compared at all: the gate does not pass (exit 2), and the GPU's verdict says why
    assert result.gpus[0].verdict == "nothing compared" and result.exit_code == 2


def test_too_few_samples_is_never_more_than_a_warning(tmp_path):
    b, c = pair(tmp_path, {"n": 2}, {"n": 2, "slowdown": {GEMM: 0.20}})
    item = by_label(compare(read_runs(b), read_runs(c)))[GEMM]
    assert item.change == pytest.approx(0.20) and item.verdict == "WARN" and "under 3 samples" in item.why


def test_pooled_records_widen_the_interval_by_their_spread(tmp_path):
    """Two baseline GPUs 10% apart: resampling records keeps that spread in the interval."""
    write_run(tmp_path / "base", "ref", gpu=0, seed=1)
    write_run(tmp_path / "base", "ref", gpu=1, seed=2, slowdown=0.10)
    write_run(tmp_path / "one", "ref", gpu=0, seed=1)
    write_run(tmp_path / "cand", "node", seed=3, slowdown=0.05)
    pooled = by_label(compare(read_runs(tmp_path / "base"), read_runs(tmp_path / "cand")))[GEMM]
    single = by_label(compare(read_runs(tmp_path / "one"), read_runs(tmp_path / "cand")))[GEMM]
    assert pooled.baseline_records == 2 and single.baseline_records == 1
    assert pooled.ci_high - pooled.ci_low > 3 * (single.ci_high - single.ci_low)


def test_gpus_run_one_per_process_are_told_apart_by_uuid(tmp_path):
    """Under CUDA_VISIBLE_DEVICES=i every run records cuda:0; the UUID keeps the GPUs apart."""
    write_run(tmp_path / "base", "ref")
    for i in range(3):
        write_run(tmp_path / "cand", "node", seed=i + 1, slowdown={GEMM: 0.15} if i == 2 else 0.0,
                  device="cuda:0", gpu_uuid=f"GPU-{i}aaaaaaa-0000")  # fmt: skip
    result = compare(read_runs(tmp_path / "base"), read_runs(tmp_path / "cand"))
    verdicts = {g.gpu: g.verdict for g in result.gpus}
    assert verdicts == {"node cuda:0 GPU-0aaaaaaa": "PASS", "node cuda:0 GPU-1aaaaaaa": "PASS",
                        "node cuda:0 GPU-2aaaaaaa": "FAIL"}  # fmt: skip


def test_a_run_given_on_both_sides_stays_in_the_candidate(tmp_path):
    write_run(tmp_path / "all", "ref")
    write_run(tmp_path / "all" / "node7", "node7", seed=2)
    result = compare(read_runs(tmp_path / "all"), read_runs(tmp_path / "all" / "node7"))
    assert "1 run given as both baseline and candidate" in result.notes[0]
    assert {c.baseline_records for c in result.comparisons} == {1}


def test_per_gpu_verdicts_name_the_slowest_gpu(tmp_path):
    write_run(tmp_path / "base", "ref")
    slow = {GEMM: 0.12, LABELS[1]: 0.08}
    for gpu in range(4):
        write_run(tmp_path / "cand", "node7", gpu=gpu, seed=gpu + 1, slowdown=slow if gpu == 2 else 0.0)
    result = compare(read_runs(tmp_path / "base"), read_runs(tmp_path / "cand"))
    verdicts = {g.gpu.split(" GPU-")[0]: g.verdict for g in result.gpus}
    assert verdicts == {"node7 cuda:0": "PASS", "node7 cuda:1": "PASS", "node7 cuda:2": "FAIL", "node7 cuda:3": "PASS"}
    (slowest,) = result.slowest
    assert slowest.gpu == "node7 cuda:2 GPU-node7-2" and slowest.node == "node7"
    # geometric mean over the six configurations: two slowed, four unchanged
    assert slowest.geomean_change == pytest.approx(geomean([1.12, 1.08, 1, 1, 1, 1]) - 1)
    assert slowest.counts == {"PASS": 4, "WARN": 0, "FAIL": 2, "MISSING": 0, "NEW": 0, "SKIP": 0}


def test_no_slowest_gpu_is_named_when_none_is_slower(tmp_path):
    write_run(tmp_path / "base", "ref")
    for gpu in range(2):
        write_run(tmp_path / "cand", "node7", gpu=gpu, seed=gpu + 1, slowdown=-0.01)
    assert compare(read_runs(tmp_path / "base"), read_runs(tmp_path / "cand")).slowest == []


def test_environment_differences_are_listed_with_a_warning(tmp_path):
    from bench.compare.report import lines

    b, c = pair(tmp_path, {}, {"env": {"driver_version": "580.65.06", "gpu_power_limit_w": 500.0}})
    result = compare(read_runs(b), read_runs(c))
    diffs = {d.key: d for d in result.env}
    assert diffs["driver"].differs and diffs["driver"].baseline == ["570.86.15"]
    assert diffs["driver"].candidate == ["580.65.06"]
    assert diffs["power limit (W, as found)"].differs
    assert not diffs["CUDA"].differs and not diffs["torch"].differs
    assert diffs["driver"].state == "differs" and diffs["CUDA"].state == "same"
    text = "\n".join(lines(result))
    assert "warning: driver differs: baseline 570.86.15, candidate 580.65.06" in text
    assert "warning: CUDA" not in text


def test_a_field_known_on_one_side_only_is_unknown_not_different(tmp_path):
    b, c = pair(tmp_path, {}, {"env": {"gpu_vbios": "96.00.99.00.01"}})
    diffs = {d.key: d for d in compare(read_runs(b), read_runs(c)).env}
    assert diffs["VBIOS"].state == "unknown" and not diffs["VBIOS"].differs


def test_values_that_differ_between_gpus_name_them(tmp_path):
    write_run(tmp_path / "base", "ref")
    for gpu in range(3):
        write_run(
            tmp_path / "cand", "n", gpu=gpu, seed=gpu + 1, env={"gpu_power_limit_w": 500.0 if gpu == 1 else 700.0}
        )
    diffs = {d.key: d for d in compare(read_runs(tmp_path / "base"), read_runs(tmp_path / "cand")).env}
    assert diffs["power limit (W, as found)"].candidate == ["500 on n cuda:1 GPU-n-1", "700 on 2 GPUs"]


def test_observed_clocks_differing_by_more_than_5pct_are_flagged(tmp_path):
    b, c = pair(tmp_path, {}, {"sm_clock_mean_mhz": 1755.0})
    diffs = {d.key: d for d in compare(read_runs(b), read_runs(c)).env}
    clock = diffs["SM clock in the windows (MHz, median)"]
    assert clock.baseline == ["1980"] and clock.candidate == ["1755"] and clock.differs


# --- the command ---------------------------------------------------------------------------------


def test_cli_exit_codes_gate_ci(tmp_path):
    b, c = pair(tmp_path, {}, {})
    same = invoke(str(b), str(c))
    assert same.exit_code == 0, same.output
    assert (
        same.output.strip().splitlines()[-1]
        == f"verdict: PASS: 6 configurations on 1 GPU, candidate {c} against baseline {b}: 6 PASS"
    )
    slow = tmp_path / "slow"
    write_run(slow, "node", slowdown={GEMM: 0.10}, seed=3)
    failed = invoke(str(b), str(slow))
    assert failed.exit_code == 1
    assert failed.output.strip().splitlines()[-1].startswith("verdict: FAIL: 6 configurations on 1 GPU, candidate ")
    assert failed.output.strip().endswith(": 5 PASS, 1 FAIL")


def test_cli_json_and_markdown(tmp_path):
    b, c = pair(tmp_path, {}, {"slowdown": {GEMM: 0.10}})
    result = invoke(str(b), str(c), "--format", "json")
    assert result.exit_code == 1
    data = json.loads(result.output)
    gemm = next(x for x in data["comparisons"] if x["config"] == GEMM)
    assert gemm["verdict"] == "FAIL" and gemm["change"] == pytest.approx(0.10)
    assert data["verdict"] == "FAIL" and data["thresholds"]["fail"] == 0.05
    md = invoke(str(b), str(c), "--format", "md")
    assert "| GPU | workload | config |" in md.output and "- verdict: FAIL" in md.output


def test_cli_malformed_results_are_a_one_line_error_naming_file_and_line(tmp_path):
    b, c = pair(tmp_path, {}, {})
    bad = next(c.glob("*.jsonl"))
    lines = bad.read_text().splitlines()
    lines[2] = lines[2].replace('"n_samples": 40', '"n_samples": "forty"')
    bad.write_text("\n".join(lines) + "\n")
    result = invoke(str(b), str(c))
    assert result.exit_code == 2
    assert f"{bad}:3: n_samples: Input should be a valid integer" in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["a"], "give BASELINE and CANDIDATE"),
        (["--reference", "a", "b"], "--reference takes one CANDIDATE"),
        (["a", "b", "--confidence", "1.5"], "--confidence must be between 0 and 1"),
        (["a", "b", "--warn-pct", "9"], "need 0 <= --warn-pct <= --fail-pct"),
        (["nowhere", "nothere"], "nothere: no such file or directory"),
        (["/dev/null", "/dev/null"], "/dev/null: not a results file or directory"),
    ],
)
def test_cli_bad_arguments(args, expect):
    result = invoke(*args)
    assert result.exit_code == 2 and expect in result.output


PROVENANCE = """gpu = "H100-SXM"
measured_on = 2026-11-01
measured_by = "tokenbench tests"
machine = "hand-made records (tests/support/handmade.py), not a measurement"
command = "tokenbench run --suite node"
"""


def test_reference_is_picked_by_the_candidates_gpu_model(tmp_path):
    refs = tmp_path / "reference"
    write_run(refs / "H100-SXM", "refnode")
    (refs / "H100-SXM" / "provenance.toml").write_text(PROVENANCE)
    write_run(refs / "H100-SXM" / "stray", "a100", slowdown=-0.5, device_name="NVIDIA A100-SXM4-80GB")
    cand = tmp_path / "cand"
    write_run(cand, "node", slowdown={GEMM: 0.10}, seed=5)
    result = invoke("--reference", str(cand), "--reference-dir", str(refs))
    assert result.exit_code == 1, result.output
    assert "baseline: reference H100-SXM measured 2026-11-01 by tokenbench tests" in result.output
    assert "6 records not from a H100-SXM left out of the reference" in result.output
    assert result.output.strip().endswith(
        "by tokenbench tests on hand-made records (tests/support/handmade.py), not a measurement: 5 PASS, 1 FAIL"
    )


def test_hostile_provenance_text_is_printed_as_plain_text(tmp_path):
    refs = tmp_path / "reference"
    write_run(refs / "H100-SXM", "refnode")
    hostile = PROVENANCE.replace('"tokenbench tests"', '"\\u001b[31mred\\u0007 [bold]x[/] \\u202emoc"')
    (refs / "H100-SXM" / "provenance.toml").write_text(hostile)
    cand = tmp_path / "cand"
    write_run(cand, "node", seed=5)
    result = invoke("--reference", str(cand), "--reference-dir", str(refs))
    assert "\x1b" not in result.output and "\x07" not in result.output and "\u202e" not in result.output
    assert "by \\x1b[31mred\\x07 [bold]x[/] \\u202emoc" in result.output  # escapes shown, markup not read


def test_no_reference_for_the_gpu_says_so(tmp_path):
    cand = tmp_path / "cand"
    write_run(cand, "node")
    result = invoke("--reference", str(cand), "--reference-dir", str(tmp_path / "empty"))
    assert result.exit_code == 2
    assert "no reference results for H100-SXM" in result.output and "references held: none" in result.output


def test_a_reference_without_provenance_is_refused(tmp_path):
    refs = tmp_path / "reference"
    write_run(refs / "H100-SXM", "refnode")
    cand = tmp_path / "cand"
    write_run(cand, "node")
    result = invoke("--reference", str(cand), "--reference-dir", str(refs))
    assert result.exit_code == 2 and "no provenance.toml" in result.output


def test_cpu_results_have_no_reference(tmp_path):
    cand = tmp_path / "cand"
    write_run(cand, "laptop", device_name="Intel(R) Xeon(R) Processor")
    result = invoke("--reference", str(cand), "--reference-dir", str(tmp_path))
    assert result.exit_code == 2 and "references are kept for catalog GPUs only" in result.output
    assert H100 not in result.output


def test_readme_compare_example_is_what_compare_prints(monkeypatch):
    """The README shows real output for the two recorded CPU runs; it must stay what the code prints."""
    root = Path(__file__).resolve().parents[2]
    text = (root / "results" / "README.md").read_text()
    command = re.search(r"\$ tokenbench compare (\S+) (\S+)\n(.*?)\$ echo \$\?\n(\d+)\n", text, re.S)
    assert command, "the README's compare example is missing"
    base, cand, shown, code = command.groups()
    monkeypatch.chdir(root)  # the paths as the README gives them, relative to the checkout
    result = CliRunner().invoke(app, ["compare", base, cand])
    printed = [ln.rstrip() for ln in result.output.splitlines()]
    assert printed == shown.rstrip("\n").splitlines()
    assert result.exit_code == int(code)


def test_a_reference_folder_joins_only_when_named(tmp_path):
    write_run(tmp_path, "node")
    write_run(tmp_path / "reference" / "H100-SXM", "refnode")
    assert {r["hostname"] for run in read_runs(tmp_path) for r in run.records} == {"node"}
    assert {r["hostname"] for run in read_runs(tmp_path / "reference") for r in run.records} == {"refnode"}


def test_joint_work_needs_the_same_number_of_ranks_and_is_not_a_gpu_speed():
    from bench.compare.model import config_key

    coll = {"workload": "all_reduce", "family": "collective", "param_size_kib": 1024, "world_size": 8}
    assert config_key(coll) != config_key({**coll, "world_size": 2})  # 8 ranks are not 2 ranks
    gemm = {"workload": "gemm", "family": "gemm", "param_m": 8, "world_size": 8}
    assert config_key(gemm) == config_key({**gemm, "world_size": 2})  # a GPU's own work: the same config
    ddp = {"workload": "train", "family": "llm", "param_parallel": "ddp", "world_size": 8}
    assert config_key(ddp) != config_key({**ddp, "world_size": 4})
