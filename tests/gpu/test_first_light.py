"""The first-light script (tests/gpu/first_light.sh) on the CPU: its dry run end to end with a few
steps (the others recorded as left out), and its helper's pieces on hand-made step folders.

Not marked `gpu`: it runs in CI, and `pytest -m gpu` (which the script itself runs) leaves it out.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from bench.measure.suites import load_suite
from tests.gpu import first_light as fl

HERE = Path(__file__).resolve().parent
STEPS = ["setup", "env", "timer", "copy", "energy", "llm-eager", "accept", "gpu-tests", "llm-compiled"]
STEPS += ["report", "cost"]


@pytest.mark.skipif(not (shutil.which("bash") and shutil.which("timeout")), reason="needs bash and coreutils timeout")
def test_dry_run_records_every_step_and_writes_one_archive(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "FIRST_LIGHT_PYTHON": sys.executable, "TMPDIR": str(tmp_path)}
    only = "timer,energy,llm-eager,report,cost"
    proc = subprocess.run(["bash", str(HERE / "first_light.sh"), "--cpu-dry-run", "--only", only, str(out)],
                          capture_output=True, text=True, timeout=240, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    files = {p.name: p.stat().st_size for p in out.iterdir()}
    assert sorted(files) == ["first_light.tar.gz", "summary.json", "summary.txt", "tables.txt"]
    assert sum(files.values()) <= fl.OUT_LIMIT_BYTES

    summary = json.loads((out / "summary.json").read_text())
    steps = {s["step"]: s for s in summary["steps"]}
    assert list(steps) == STEPS and summary["mode"] == "cpu-dry-run"
    status = {name: s["status"] for name, s in steps.items()}
    assert status["setup"] == status["llm-eager"] == status["report"] == "ok", steps
    for name in ("timer", "energy", "cost"):  # ran on the CPU, but their targets are a GPU's
        assert status[name] == "skipped" and steps[name]["reason"].startswith("no GPU"), steps[name]
        assert steps[name]["rc"] == "77"
    for name in ("env", "copy", "accept", "gpu-tests", "llm-compiled"):
        assert status[name] == "skipped" and "left out" in steps[name]["reason"]
    assert summary["probes"]["energy"]["energy_disagreement"] < 1e-3  # the scripted NVML: a steady 300 W
    assert {r["workload"] for r in summary["records"]} == {"train", "decode"}

    text = (out / "summary.txt").read_text()
    assert "P1 timer" in text and "MBU" in text and "MFU" in text and "node table" in text
    with tarfile.open(out / "first_light.tar.gz") as tar:
        names = tar.getnames()
    for name in ("steps.tsv", "summary.txt", "MANIFEST.txt", "report/report.html", "timer/timer.json"):
        assert f"first_light/{name}" in names
    assert any(n.startswith("first_light/llm-eager/results/") and n.endswith(".jsonl") for n in names)


@pytest.mark.parametrize("cpu", [False, True])
def test_the_llm_suites_are_valid_and_sized(tmp_path, monkeypatch, cpu):
    monkeypatch.delenv("FIRST_LIGHT_COMPILED_LAYERS", raising=False)
    labels = {}
    for kind in ("eager", "compiled"):
        path = tmp_path / f"{kind}.toml"
        path.write_text(fl.suite_toml(kind, cpu))
        labels[kind] = [e.label for e in load_suite(str(path)).entries]
    if cpu:
        assert labels["compiled"] == [f"decode tiny (1 layers) b{b} compiled pp32+tg16" for b in (1, 4)]
        return
    assert labels["eager"] == [
        "train llama-3.2-1b b4 s2048",
        "decode llama-3.1-8b b1 pp512+tg128",
        "decode llama-3.1-8b b32 pp512+tg128",
        "decode llama-3.1-8b (8 layers) b1 pp512+tg128",
        "decode llama-3.1-8b (8 layers) b32 pp512+tg128",
    ]
    assert labels["compiled"] == ["decode llama-3.1-8b (8 layers) b1 compiled pp512+tg128",
                                  "decode llama-3.1-8b (8 layers) b32 compiled pp512+tg128"]  # fmt: skip
    monkeypatch.setenv("FIRST_LIGHT_COMPILED_LAYERS", "full")  # the whole model compiled, no same-depth eager twin
    assert "n_layers" not in fl.suite_toml("compiled", False) + fl.suite_toml("eager", False)


def _step(work: Path, name: str, rc: str, log: str = "", limit: str = "60") -> dict[str, str]:
    (work / name).mkdir(parents=True, exist_ok=True)
    (work / name / "log.txt").write_text(log)
    return {"step": name, "rc": rc, "seconds": "1", "limit_s": limit, "note": "left out" if rc == "-" else ""}


def _records(path: Path, *records: dict) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "run.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def _junit(path: Path, cases: str) -> None:
    (path / "junit.xml").write_text(f'<testsuites><testsuite name="pytest">{cases}</testsuite></testsuites>')


def test_classify_reads_exit_codes_logs_and_outputs(tmp_path):
    c = lambda s: fl.classify(s, tmp_path)  # noqa: E731
    assert c(_step(tmp_path, "copy", "-")) == ("skipped", "left out")
    assert c(_step(tmp_path, "timer", "0")) == ("ok", "")
    assert c(_step(tmp_path, "timer", "77", "{}\nSKIP: no GPU: none here\n")) == ("skipped", "no GPU: none here")
    assert c(_step(tmp_path, "copy", "1", "FAIL: copy 0.9 < 0.95 (target)\n")) == ("fail", "copy 0.9 < 0.95 (target)")
    assert c(_step(tmp_path, "accept", "78", "MISSING: no accept\n")) == ("missing", "no accept")
    assert c(_step(tmp_path, "energy", "3", "Traceback\nRuntimeError: CUDA error\n")) == (
        "error", "exit 3: RuntimeError: CUDA error")  # fmt: skip

    step = _step(tmp_path, "llm-compiled", "124", limit="80")
    _records(tmp_path / "llm-compiled" / "results", {"workload": "decode", "status": "ok"})
    assert c(step) == ("timeout", "stopped at its 80 s limit; 1 records kept")
    step = _step(tmp_path, "llm-eager", "1")
    _records(tmp_path / "llm-eager" / "results", {"workload": "decode", "label": "b1", "status": "failed",
                                                  "reason": "CUDA out of memory"})  # fmt: skip
    assert c(step) == ("fail", "decode b1: CUDA out of memory")

    step = _step(tmp_path, "gpu-tests", "0")
    _junit(tmp_path / "gpu-tests", '<testcase name="t1"><skipped message="needs a CUDA GPU"/></testcase>')
    assert c(step) == ("skipped", "0 passed, 0 failed, 1 skipped: needs a CUDA GPU")
    step = _step(tmp_path, "gpu-tests", "1")
    _junit(tmp_path / "gpu-tests", '<testcase name="t1"/><testcase name="t2"><failure message="x"/></testcase>')
    assert c(step) == ("fail", "1 passed, 1 failed, 0 skipped: t2")


def test_summary_states_the_key_figures(tmp_path):
    (tmp_path / "steps.tsv").write_text("step\trc\tseconds\tlimit_s\tnote\ntimer\t0\t12\t60\t\n")
    (tmp_path / "timer").mkdir()
    fl._write_json(tmp_path / "timer" / "timer.json", {
        "probe": "timer", "label": "8192x8192x8192 bf16", "tokenbench_median_s": 1.40e-3, "loop_median_s": 1.393e-3,
        "throughput_ratio": 0.995, "tokenbench_tflops": 785.4, "loop_tflops": 789.3, "reference": "torch.mm loop",
        "loop_timer": "cuda_event", "target": 0.99, "passed": True})  # fmt: skip
    (tmp_path / "energy").mkdir()
    fl._write_json(tmp_path / "energy" / "energy.json", {
        "label": "8192x8192x8192 bf16", "energy_window_s": 8.0, "telemetry": "NVML (instant)",
        "energy_counter_j": 5400.0, "energy_integrated_j": 5346.0, "energy_disagreement": 0.01, "target": 0.05,
        "passed": True, "power_mean_w": 675.0})  # fmt: skip
    _records(tmp_path / "llm-eager" / "results",
             {"workload": "train", "family": "llm", "label": "llama-3.2-1b b4 s2048", "status": "ok", "mfu": 0.45,
              "tokens_per_s": 61000.0, "tflops": 445.5, "model_layers": 16, "model_layers_full": 16},
             {"workload": "decode", "family": "llm", "label": "llama-3.1-8b b1 pp512+tg128", "status": "ok",
              "mbu": 0.61, "output_tokens_per_s": 171.0, "tpot_median_s": 0.0058, "kernel": "eager"})  # fmt: skip
    text, data, tables = fl.build_summary(tmp_path, cpu=False, budget_s=345, elapsed_s=300)
    assert "throughput ratio 0.9950 (target >= 0.99) PASS" in text
    assert "counter 5400.0 J, integrated power 5346.0 J, gap 1.00% (target <= 5%) PASS" in text
    assert "train llama-3.2-1b b4 s2048: MFU 0.450" in text
    assert "decode llama-3.1-8b b1 pp512+tg128 [eager]: MBU 0.610, 171 tokens/s" in text
    assert "P2 copy    not measured" in text and data["steps"][0]["status"] == "ok" and text in tables


def test_pack_keeps_the_ends_of_long_logs_and_leaves_out_what_does_not_fit(tmp_path):
    work, out = tmp_path / "first_light", tmp_path / "out"
    (work / "step").mkdir(parents=True)
    out.mkdir()
    (work / "step" / "log.txt").write_text("first line\n" + "x" * (3 * fl.LOG_KEEP_BYTES) + "\nlast line\n")
    (work / "step" / "blob.bin").write_bytes(os.urandom(300_000))  # incompressible
    (work / "steps.tsv").write_text("step\trc\n")
    notes = fl.pack(work, out / fl.ARCHIVE, limit=200_000)
    assert (out / fl.ARCHIVE).stat().st_size <= 200_000
    assert any("left out" in n and "step/blob.bin" in n for n in notes)
    assert any("shortened" in n and "step/log.txt" in n for n in notes)
    with tarfile.open(out / fl.ARCHIVE) as tar:
        log = tar.extractfile("first_light/step/log.txt").read().decode()  # type: ignore[union-attr]
        manifest = tar.extractfile("first_light/MANIFEST.txt").read().decode()  # type: ignore[union-attr]
        assert "first_light/steps.tsv" in tar.getnames()
    assert log.startswith("first line") and log.endswith("last line\n") and "bytes cut" in log
    assert "step/blob.bin" in manifest
