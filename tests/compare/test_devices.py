"""compare and device models: records of different models are SKIP rows unless --allow-different-devices."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from bench.cli import app
from bench.compare.model import Thresholds, compare
from bench.compare.report import lines
from bench.results.reader import read_runs
from tests.support.handmade import CONFIGS, write_run

INTEL = "Intel(R) Xeon(R) Platinum 8480+"
AMD = "AMD EPYC 9654 96-Core Processor"
GEMM = CONFIGS[0][2]


def cpu_run(out: Path, host: str, name: str, seed: int = 0, **over) -> Path:
    return write_run(out, host, seed=seed, device="cpu", device_kind="cpu", device_name=name, gpu_uuid=None,
                     env={"device_name": name}, **over)  # fmt: skip


def test_an_intel_and_an_amd_cpu_are_not_compared(tmp_path):
    cpu_run(tmp_path / "base", "vm", INTEL)
    cpu_run(tmp_path / "cand", "vm", AMD, seed=1)
    result = compare(read_runs(tmp_path / "base"), read_runs(tmp_path / "cand"))
    assert {c.verdict for c in result.comparisons} == {"SKIP"} and len(result.comparisons) == len(CONFIGS)
    assert all(c.change is None and c.severity == "WARN" for c in result.comparisons)
    why = f"baseline on {INTEL}, candidate on {AMD}: different device models are compared only with "
    assert result.comparisons[0].why == why + "--allow-different-devices"
    assert result.compared == 0 and result.exit_code == 2
    assert result.nothing_compared() == f"nothing compared: {why}--allow-different-devices (6 configurations)"


def test_the_command_stops_with_the_reason_first_and_exit_2(tmp_path):
    cpu_run(tmp_path / "base", "vm", INTEL)
    cpu_run(tmp_path / "cand", "vm", AMD, seed=1)
    result = CliRunner().invoke(app, ["compare", str(tmp_path / "base"), str(tmp_path / "cand")])
    assert result.exit_code == 2
    printed = result.output.strip().splitlines()
    assert printed[0] == (
        f"tokenbench: error: nothing compared: baseline on {INTEL}, candidate on {AMD}: different device models are "
        "compared only with --allow-different-devices (6 configurations)"
    )
    assert printed[-1].startswith("verdict: nothing compared: 6 configurations on 1 GPU") and ": 6 SKIP" in printed[-1]


def test_allowed_they_are_compared_and_the_table_says_the_devices_differ(tmp_path):
    cpu_run(tmp_path / "base", "vm", INTEL)
    cpu_run(tmp_path / "cand", "vm", AMD, seed=1, slowdown={GEMM: 0.10})
    result = compare(read_runs(tmp_path / "base"), read_runs(tmp_path / "cand"),
                     Thresholds(allow_different_devices=True))  # fmt: skip
    verdicts = {c.config: c.verdict for c in result.comparisons}
    assert verdicts[GEMM] == "FAIL" and {v for k, v in verdicts.items() if k != GEMM} == {"PASS"}
    assert all(c.devices_differ for c in result.comparisons)
    gemm = next(c for c in result.comparisons if c.config == GEMM)
    assert gemm.why == f"devices differ: baseline {INTEL}, candidate {AMD}; slower by more than 5% beyond the noise"
    text = "\n".join(lines(result))
    assert "note: 6 configurations compared across device models (--allow-different-devices)" in text
    assert f"warning: device differs: baseline {INTEL}, candidate {AMD}" in text
    cli = CliRunner().invoke(app, ["compare", str(tmp_path / "base"), str(tmp_path / "cand"),
                                   "--allow-different-devices"])  # fmt: skip
    assert cli.exit_code == 1 and "devices differ: baseline" in cli.output


def test_a_baseline_of_both_models_is_matched_on_the_candidates(tmp_path):
    cpu_run(tmp_path / "base", "intel-vm", INTEL)
    cpu_run(tmp_path / "base", "amd-vm", AMD, seed=2, slowdown=0.5)  # far slower: it must not join the pool
    cpu_run(tmp_path / "cand", "vm", INTEL, seed=1)
    result = compare(read_runs(tmp_path / "base"), read_runs(tmp_path / "cand"))
    assert {c.verdict for c in result.comparisons} == {"PASS"}
    assert {c.baseline_records for c in result.comparisons} == {1}
    assert not any(c.devices_differ for c in result.comparisons)
    assert any(n.startswith("the baseline pools several device models") for n in result.notes)


def test_one_gpu_of_another_model_is_skipped_beside_the_compared(tmp_path):
    write_run(tmp_path / "base", "ref")
    write_run(tmp_path / "cand", "node", gpu=0, seed=1)
    write_run(tmp_path / "cand", "node", gpu=1, seed=2, device_name="NVIDIA A100-SXM4-80GB")
    result = compare(read_runs(tmp_path / "base"), read_runs(tmp_path / "cand"))
    by_gpu = {g.gpu.split(" GPU-")[0]: g for g in result.gpus}
    assert by_gpu["node cuda:0"].verdict == "PASS" and by_gpu["node cuda:0"].counts["SKIP"] == 0
    # nothing compared on the A100: no pass for it, and the whole run fails (some were compared: exit 1)
    assert by_gpu["node cuda:1"].counts["SKIP"] == 6 and by_gpu["node cuda:1"].verdict == "FAIL"
    assert result.exit_code == 1
    assert "note: 6 configurations not compared: measured on different device models" in "\n".join(lines(result))
