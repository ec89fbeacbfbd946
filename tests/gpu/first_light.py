"""First light on a real GPU: the Python half of tests/gpu/first_light.sh (see tests/README.md).

The shell script runs each step below in its own process, under `timeout`, in the step's own
folder; this module is what those processes run. Exit codes: 0 ok, 1 a target missed or a check
failed, 77 skipped (the reason on a line starting "SKIP:"), 78 a command this tree does not have.

    python tests/gpu/first_light.py versions FILE.json          # what imports, which versions
    python tests/gpu/first_light.py timer|copy|energy FILE.json [--cpu]
    python tests/gpu/first_light.py suite FILE.toml --kind eager|compiled [--cpu]
    python tests/gpu/first_light.py accept [--cpu]              # tokenbench accept --profile quick
    python tests/gpu/first_light.py report|cost WORK [--cpu]    # over every results/ folder in WORK
    python tests/gpu/first_light.py summary WORK OUT [--cpu] [--budget-s N] [--elapsed-s N]
    python tests/gpu/first_light.py pack WORK OUT

The probes (timer, copy, energy) measure in one process against a plain reference:

- timer (P1): tokenbench's timer (bench.measure.timing.measure, as a run calls it) on the GEMM
  workload's case against a plain torch.mm loop between two CUDA events, interleaved; the
  throughput ratio must be at least 0.99.
- copy (P2): the same for the copy workload against a loop of torch's device-to-device copy
  (Tensor.copy_); at least 0.95.
- energy: one window of a steady bf16 GEMM; the NVML total-energy counter against the power
  samples integrated over the same window (bench.device.energy); within 5%.

With --cpu (the script's --cpu-dry-run) every probe runs with tiny shapes on the CPU, against a
host-clock loop and the tests' scripted NVML stand-in, and reports itself skipped: the targets
are a GPU's. `summary` and `pack` use the standard library alone, so they work where tokenbench
itself does not import.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import re
import subprocess
import sys
import tarfile
import time
import zlib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # bench, workloads and tests.benchmarks, without an install

OK, FAILED, SKIPPED, MISSING = 0, 1, 77, 78
TARGETS = {"timer": 0.99, "copy": 0.95, "energy": 0.05}
# Sizes per mode. GPU: the issue's shapes, sized so the whole script stays under 6 minutes on one GPU.
PROBES: dict[str, dict[str, Any]] = {
    "gpu": {
        "gemm": {"m": 8192, "n": 8192, "k": 8192, "dtype": "bf16"},
        "copy": {"size_mib": 1024},
        "rounds": 3,
        "seconds": 0.5,
        "energy_warmup_s": 2.0,
        "energy_window_s": 8.0,
    },
    "cpu": {
        "gemm": {"m": 256, "n": 256, "k": 256, "dtype": "fp32"},
        "copy": {"size_mib": 16},
        "rounds": 2,
        "seconds": 0.1,
        "energy_warmup_s": 0.1,
        "energy_window_s": 1.0,
    },
}
# Output files in OUT besides the archive: at most 8 files of 16 MiB in all, so they are easy to copy back.
OUT_FILES = ("summary.txt", "summary.json", "tables.txt")
ARCHIVE = "first_light.tar.gz"
OUT_LIMIT_BYTES = 16 * 2**20
LOG_KEEP_BYTES = 2 * 2**20  # a log longer than this keeps its first and last parts in the archive


def _mode(cpu: bool) -> str:
    return "cpu" if cpu else "gpu"


def _skip(reason: str) -> int:
    print(f"SKIP: {reason}", flush=True)
    return SKIPPED


def _write_json(path: str | Path, data: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")


# --- versions ---------------------------------------------------------------------------------


def cmd_versions(args: argparse.Namespace) -> int:
    """What imports and which versions: the setup step's check that tokenbench can run at all."""
    info: dict[str, Any] = {"python": sys.version.split()[0], "executable": sys.executable}
    ok = True
    for name in ("pydantic", "pydantic_core", "typing_extensions", "numpy", "pandas", "typer", "pynvml", "torch"):
        try:
            module = __import__(name)
            info[name] = getattr(module, "__version__", None) or getattr(module, "VERSION", "?")
        except Exception as e:
            info[name] = f"not importable: {type(e).__name__}: {e}"
            ok = ok and name not in ("pydantic", "torch", "pandas", "typer")
    try:
        import bench
        import workloads  # noqa: F401

        info["tokenbench"] = bench.__version__
    except Exception as e:
        info["tokenbench"] = f"not importable: {type(e).__name__}: {e}"
        ok = False
    if isinstance(info.get("torch"), str) and not info["torch"].startswith("not importable"):
        import torch

        info["cuda_available"] = torch.cuda.is_available()
        info["torch_cuda"] = torch.version.cuda
        info["device_name"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    _write_json(args.file, info)
    for key, value in info.items():
        print(f"{key:18} {value}")
    return OK if ok else FAILED


# --- probes -----------------------------------------------------------------------------------


def _device(cpu: bool) -> tuple[Any, str | None]:
    """The device to measure, or (None, why not)."""
    from bench.device.base import cuda_unusable_reason, detect

    if cpu:
        return detect("cpu"), None
    why = cuda_unusable_reason()
    return (None, f"no GPU: {why}") if why else (detect("cuda"), None)


def _judge(result: dict[str, Any], probe: str, value: float | None, cpu: bool, higher_is_better: bool) -> int:
    """Hold `value` against the probe's target; sets result['passed'] and result['verdict']."""
    target = TARGETS[probe]
    result["target"] = target
    if value is None or not math.isfinite(value):
        result["passed"], result["verdict"] = None, f"FAIL: {probe}: no finite figure ({value})"
        return FAILED
    passed = value >= target if higher_is_better else value <= target
    relation = (">=" if passed else "<") if higher_is_better else ("<=" if passed else ">")
    if cpu:
        result["passed"] = None
        result["verdict"] = (f"SKIP: no GPU: measured on the CPU only to exercise the code ({probe} {value:.4g}); "
                             "the target is a GPU's")  # fmt: skip
        return SKIPPED
    result["passed"] = passed
    result["verdict"] = f"{'OK' if passed else 'FAIL'}: {probe} {value:.4g} {relation} {target} (target)"
    return OK if passed else FAILED


def _finish(path: str, result: dict[str, Any], code: int) -> int:
    """Write and print the probe's result, its verdict line last (the script shows the last line)."""
    _write_json(path, result)
    print(json.dumps(result, indent=2, default=str))
    print(result.get("verdict") or f"exit {code}", flush=True)
    return code


def cmd_ratio(args: argparse.Namespace) -> int:
    """P1 (timer: GEMM against a torch.mm loop) or P2 (copy against a Tensor.copy_ loop)."""
    dev, why = _device(args.cpu)
    if dev is None:
        _write_json(args.file, {"probe": args.probe, "status": "skipped", "reason": why})
        return _skip(str(why))
    import torch

    import workloads
    from tests.benchmarks.timer_vs_torch import tokenbench_vs_plain_loop

    sizes = PROBES[_mode(args.cpu)]
    wid = "gemm" if args.probe == "timer" else "copy"
    w = workloads.get(wid)
    p = w.parse(sizes[wid])
    counts = w.counts(p)
    with w.prepare(p, dev, seed=0) as case:
        if wid == "gemm":
            reference = lambda: torch.mm(case.a, case.b, out=case.out)  # noqa: E731
            ref_name = "torch.mm loop"
        else:
            reference = lambda: case.dst.copy_(case.src)  # noqa: E731
            ref_name = "Tensor.copy_ loop (device-to-device copy)"
        got = tokenbench_vs_plain_loop(
            case.run, reference, dev, rounds=sizes["rounds"], seconds=sizes["seconds"], working_set_bytes=counts.bytes
        )
        check = case.check()
    result: dict[str, Any] = {"probe": args.probe, "workload": wid, "label": w.label(p), "device": dev.name}
    result.update(got, reference=ref_name, check_passed=check.passed)
    if counts.flops:
        result["tokenbench_tflops"] = counts.flops / got["tokenbench_median_s"] / 1e12
        result["loop_tflops"] = counts.flops / got["loop_median_s"] / 1e12
    if counts.bytes:
        result["tokenbench_gb_per_s"] = counts.bytes / got["tokenbench_median_s"] / 1e9
        result["loop_gb_per_s"] = counts.bytes / got["loop_median_s"] / 1e9
    code = _judge(result, args.probe, got["throughput_ratio"], args.cpu, higher_is_better=True)
    if not check.passed:
        code, result["verdict"] = FAILED, f"FAIL: {wid} output check failed: {check}"
    return _finish(args.file, result, code)


def _telemetry(dev: Any, cpu: bool, window_s: float) -> tuple[Any, str | None, str]:
    """(telemetry, why none, label): the real NVML on a GPU; the scripted stand-in on the CPU."""
    from bench.device import telemetry
    from tests.benchmarks.telemetry_overhead import scripted_telemetry

    if cpu:
        return scripted_telemetry(window_s), None, "scripted pynvml stand-in (a steady 300 W)"
    tel = telemetry.for_device(dev, min_window_s=window_s)
    if not tel.active:
        return None, f"NVML reads no power or energy here: {tel.reason}", "none"
    return tel, None, f"NVML ({tel.power_reading})"


def cmd_energy(args: argparse.Namespace) -> int:
    """The energy counter against integrated power over one window of a steady bf16 GEMM."""
    dev, why = _device(args.cpu)
    if dev is None:
        _write_json(args.file, {"probe": "energy", "status": "skipped", "reason": why})
        return _skip(str(why))
    import workloads
    from bench.device import telemetry
    from bench.device.energy import energy_fields
    from bench.measure.timing import TimerConfig, measure

    sizes = PROBES[_mode(args.cpu)]
    window_s = sizes["energy_window_s"]
    tel, why, label = _telemetry(dev, args.cpu, window_s)
    if tel is None:
        _write_json(args.file, {"probe": "energy", "status": "skipped", "reason": why})
        return _skip(str(why))
    w = workloads.get("gemm")
    p = w.parse(sizes["gemm"])
    counts = w.counts(p)
    cfg = TimerConfig(warmup_s=sizes["energy_warmup_s"], min_time_s=window_s, min_reps=10, max_reps=1_000_000,
                      max_time_s=3 * window_s)  # fmt: skip
    sampler = telemetry.Sampler(tel)
    with w.prepare(p, dev, seed=0) as case:
        timing = measure(case.run, dev, cfg, working_set_bytes=counts.bytes, window=sampler)
    assert sampler.window is not None  # measure() closed it
    fields = energy_fields(sampler.window)
    result: dict[str, Any] = {"probe": "energy", "workload": "gemm", "label": w.label(p), "device": dev.name,
                              "telemetry": label, "calls": timing.window_calls,
                              "samples_in_window": len(sampler.window.inside()), **fields}  # fmt: skip
    counter, integrated = fields["energy_counter_j"], fields["energy_integrated_j"]
    if counter is None or integrated is None:
        result["reason"] = f"counter {counter}, integrated {integrated}: {fields['energy_reason']}"
        result["verdict"] = f"SKIP: only one of the two energy figures here: {result['reason']}"
        return _finish(args.file, result, SKIPPED)
    result["power_mean_w"] = counter / fields["energy_window_s"] if fields["energy_window_s"] else None
    code = _judge(result, "energy", fields["energy_disagreement"], args.cpu, higher_is_better=False)
    return _finish(args.file, result, code)


# --- the LLM suites ---------------------------------------------------------------------------


def compiled_layers(full: int) -> int:
    """Layers of the compiled decode: FIRST_LIGHT_COMPILED_LAYERS (a number, or 'full'), else 8.

    Compiling the whole 32-layer model twice (batch 1 and 32) would take minutes of the budget;
    8 layers of the 8B shape compile in a fraction of that, and an eager run at the same depth
    beside it shows what compilation buys."""
    raw = os.environ.get("FIRST_LIGHT_COMPILED_LAYERS", "8").strip().lower()
    return full if raw in ("full", "0", "") else min(full, int(raw))


# The suite timers: the GPU's long enough for a steady median of an 8B decode call (about a second
# eager), short enough for the budget; the CPU's just enough to exercise the path.
SUITE_TIMERS = {
    "gpu": "warmup_s = 0.5\nmin_time_s = 1.0\nmin_reps = 3\nmax_reps = 1000\nmax_time_s = 8.0\ncv_threshold = 0.05",
    "cpu": "warmup_s = 0.05\nmin_time_s = 0.1\nmin_reps = 3\nmax_reps = 1000\nmax_time_s = 2.0\ncv_threshold = 0.1",
}


def _entry(workload: str, params: str, batches: str | None = None, timer: str | None = None) -> list[str]:
    lines = ["[[bench]]", f'workload = "{workload}"', f"params = {{ {params} }}"]
    lines += [f"sweep = {{ batch = {batches} }}"] if batches else []
    lines += [f"timer = {{ {timer} }}"] if timer else []
    return [*lines, ""]


def suite_toml(kind: str, cpu: bool) -> str:
    """The suite of one LLM step: the 1B-shaped train step and the 8B-shaped decode (eager), or
    the compiled decode; on the CPU the tiny preset."""
    if cpu:
        train, train_timer = 'model = "tiny", batch = 2, seq_len = 64', None
        decode, batches, layers, full = 'model = "tiny", prompt_len = 32, new_tokens = 16', "[1, 4]", 1, 2
    else:
        train = 'model = "llama-3.2-1b", batch = 4, seq_len = 2048'
        train_timer = "warmup_s = 1.0, min_time_s = 2.0, min_reps = 5"
        decode, batches, full = 'model = "llama-3.1-8b", prompt_len = 512, new_tokens = 128', "[1, 32]", 32
        layers = compiled_layers(full)
    depth = "" if layers == full else f", n_layers = {layers}"
    lines = [f'description = "first light ({kind}): see tests/gpu/first_light.py"', "", "[timer]"]
    lines += [SUITE_TIMERS[_mode(cpu)], ""]
    if kind == "eager":
        lines += _entry("train", train, timer=train_timer) + _entry("decode", decode, batches)
        if depth:  # the compiled decode's depth, eager: what compilation buys at the same shape
            lines += _entry("decode", decode + depth, batches)
    else:
        lines += _entry("decode", f"{decode}{depth}, compile = true", batches)
    return "\n".join(lines)


def cmd_suite(args: argparse.Namespace) -> int:
    text = suite_toml(args.kind, args.cpu)
    Path(args.file).write_text(text, encoding="utf-8")
    print(text)
    return OK


# --- tokenbench commands ----------------------------------------------------------------------


def _tokenbench(*args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bench", *args], text=True, **kw)


def cmd_accept(args: argparse.Namespace) -> int:
    """tokenbench accept --profile quick, where this tree has the command; its records to ./results."""
    helped = _tokenbench("accept", "--help", capture_output=True)
    text = helped.stdout + helped.stderr
    if helped.returncode != 0:
        print(text)
        if "No such command" in text:
            print("MISSING: tokenbench accept: this tree has no such command (yet)", flush=True)
            return MISSING
        return helped.returncode
    cmd = ["accept", "--profile", "quick"]
    if re.search(r"--out\b", text):
        cmd += ["--out", "results"]
    if args.cpu and re.search(r"--device\b", text):
        cmd += ["--device", "cpu"]
    print("$ tokenbench " + " ".join(cmd), flush=True)
    return _tokenbench(*cmd).returncode


def results_dirs(work: Path) -> list[Path]:
    """Every folder under WORK that holds records (.jsonl), in step order."""
    found = {p.parent for p in work.rglob("*.jsonl")}
    return sorted(found)


def cmd_report(args: argparse.Namespace) -> int:
    dirs = results_dirs(Path(args.work))
    if not dirs:
        return _skip("no results to report: no step wrote records")
    got = _tokenbench("report", "--format", "md", "--html", "report.html", *map(str, dirs), capture_output=True)
    Path("report.md").write_text(got.stdout, encoding="utf-8")
    print(got.stdout + got.stderr)
    return got.returncode


def cmd_cost(args: argparse.Namespace) -> int:
    dirs = results_dirs(Path(args.work))
    if not dirs:
        return _skip("nothing to price: no step wrote records")
    got = _tokenbench("cost", *map(str, dirs), capture_output=True)
    Path("cost.txt").write_text(got.stdout, encoding="utf-8")
    print(got.stdout + got.stderr)
    if args.cpu and got.returncode == 2:
        return _skip("no GPU: " + (got.stderr.strip().splitlines() or ["tokenbench cost exited 2"])[-1])
    return got.returncode


# --- summary ----------------------------------------------------------------------------------


def read_steps(work: Path) -> list[dict[str, str]]:
    """steps.tsv as the shell script wrote it: step, rc, seconds, limit_s, note."""
    path = work / "steps.tsv"
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    head = lines[0].split("\t")
    return [dict(zip(head, line.split("\t"), strict=False)) for line in lines[1:] if line.strip()]


def _log_lines(step_dir: Path) -> list[str]:
    log = step_dir / "log.txt"
    return log.read_text(encoding="utf-8", errors="replace").splitlines() if log.is_file() else []


def _marked(lines: list[str], mark: str) -> str | None:
    for line in reversed(lines):
        if line.startswith(mark):
            return line[len(mark) :].strip()
    return None


def _last_words(lines: list[str]) -> str:
    """The last informative line of a log: an error where there is one."""
    for line in reversed(lines):
        if re.search(r"error|Error|FAIL|Traceback|Killed|failed", line):
            return line.strip()[:300]
    return next((line.strip()[:300] for line in reversed(lines) if line.strip()), "no output")


def _junit(step_dir: Path) -> dict[str, Any] | None:
    """Counts and the failed and skipped tests of pytest's junit.xml, where it was written."""
    import xml.etree.ElementTree as ET

    path = step_dir / "junit.xml"
    if not path.is_file():
        return None
    root = ET.parse(path).getroot()
    failed, skipped, passed = [], [], 0
    for case in root.iter("testcase"):
        name = case.get("name", "?")
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(name)
        elif (skip := case.find("skipped")) is not None:
            skipped.append((name, skip.get("message", "")))
        else:
            passed += 1
    return {"passed": passed, "failed": failed, "skipped": skipped}


def _failed_records(step_dir: Path) -> list[str]:
    return [f"{r.get('workload')} {r.get('label')}: {r.get('reason')}" for r in _records(step_dir)
            if r.get("status") == "failed"]  # fmt: skip


def classify(step: dict[str, str], work: Path) -> tuple[str, str]:
    """(status, reason) of one step from its exit code, its log and what it wrote.

    Statuses: ok, fail (a target missed, a check or test failed), error (it broke), timeout,
    skipped (with the reason: no GPU, left out, out of budget), missing (no such command)."""
    name, rc, note = step["step"], step.get("rc", "-"), step.get("note", "")
    d = work / name
    lines = _log_lines(d)
    if rc == "-":
        return "skipped", note
    code = int(rc)
    if code in (124, 137):
        kept = len(_records(d))
        return "timeout", f"stopped at its {step.get('limit_s')} s limit" + (f"; {kept} records kept" if kept else "")
    if code == SKIPPED:
        return "skipped", _marked(lines, "SKIP:") or note or "skipped"
    if code == MISSING:
        return "missing", _marked(lines, "MISSING:") or "command not in this tree"
    if name == "gpu-tests":
        return _classify_pytest(code, d, lines)
    if code == 0:
        return "ok", note or _ok_note(name, d)
    if name.startswith("llm-") and code == 1 and (failed := _failed_records(d)):
        return "fail", "; ".join(failed)[:500]
    if code == 1:
        return "fail", _marked(lines, "FAIL:") or _last_words(lines)
    return "error", f"exit {code}: {_last_words(lines)}"


def _classify_pytest(code: int, d: Path, lines: list[str]) -> tuple[str, str]:
    j = _junit(d)
    if code == 5:
        return "skipped", "pytest collected no GPU tests"
    if j is None:
        return ("ok" if code == 0 else "error"), f"exit {code}; no junit.xml: {_last_words(lines)}"
    counts = f"{j['passed']} passed, {len(j['failed'])} failed, {len(j['skipped'])} skipped"
    if code == 0 and j["passed"] == 0 and j["skipped"]:
        return "skipped", f"{counts}: {j['skipped'][0][1]}"
    if code == 0:
        return "ok", counts
    return ("fail" if code == 1 else "error"), f"{counts}: {', '.join(j['failed'])}"[:500]


def _ok_note(name: str, d: Path) -> str:
    if name.startswith("llm-") or name == "accept":
        records = _records(d)
        return f"{len(records)} records" if records else ""
    if name == "setup":
        with contextlib.suppress(OSError, ValueError):
            v = json.loads((d / "versions.json").read_text(encoding="utf-8"))
            return f"tokenbench {v.get('tokenbench')}, pydantic {v.get('pydantic')}, torch {v.get('torch')}"
    if name in ("report", "cost"):
        return ", ".join(f"{p.name} ({p.stat().st_size} bytes)" for p in sorted(d.iterdir()) if p.name != "log.txt")
    return ""


def _records(d: Path) -> list[dict[str, Any]]:
    """Every record under `d` (its .jsonl files), parsed with the standard library."""
    out = []
    for path in sorted(d.rglob("*.jsonl")) if d.is_dir() else []:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                out.append({**record, "_step": d.name})
    return out


def _probe(work: Path, name: str) -> dict[str, Any] | None:
    path = work / name / f"{name}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except ValueError:
        return None


def _num(x: Any, fmt: str = ".4g", unit: str = "") -> str:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        return "-"
    return f"{x:{fmt}}{unit}"


def _seconds(x: Any) -> str:
    if not isinstance(x, (int, float)) or isinstance(x, bool):
        return "-"
    return f"{x * 1e3:.4g} ms" if x < 1 else f"{x:.4g} s"


def _verdict(passed: Any) -> str:
    return {True: "PASS", False: "FAIL"}.get(passed, "not judged")


def probe_lines(work: Path) -> list[str]:
    """P1, P2 and the energy agreement, one line each."""
    out = []
    for name, title in (("timer", "P1 timer"), ("copy", "P2 copy")):
        r = _probe(work, name)
        if not r or "throughput_ratio" not in r:
            out.append(f"{title:10} {r.get('reason') if r else 'not measured'}")
            continue
        rate = ("tokenbench_tflops", "loop_tflops", "TFLOP/s") if name == "timer" else (
            "tokenbench_gb_per_s", "loop_gb_per_s", "GB/s")  # fmt: skip
        out.append(
            f"{title:10} {r['label']}: tokenbench {_seconds(r['tokenbench_median_s'])} ({_num(r.get(rate[0]), '.5g')} "
            f"{rate[2]}) vs {r['reference']} ({r['loop_timer']}) {_seconds(r['loop_median_s'])} "
            f"({_num(r.get(rate[1]), '.5g')} {rate[2]}): throughput ratio {r['throughput_ratio']:.4f} "
            f"(target >= {r['target']}) {_verdict(r.get('passed'))}"
        )
    r = _probe(work, "energy")
    if not r or r.get("energy_disagreement") is None:
        out.append(f"{'energy':10} {r.get('reason') if r else 'not measured'}")
    else:
        out.append(
            f"{'energy':10} {r['label']} over {r['energy_window_s']:.2f} s ({r['telemetry']}): counter "
            f"{r['energy_counter_j']:.1f} J, integrated power {r['energy_integrated_j']:.1f} J, gap "
            f"{100 * r['energy_disagreement']:.2f}% (target <= {100 * r['target']:g}%) {_verdict(r.get('passed'))}; "
            f"mean {_num(r.get('power_mean_w'), '.0f', ' W')}"
        )
    return out


def _depth(r: dict[str, Any]) -> str:
    layers, full = r.get("model_layers"), r.get("model_layers_full")
    return f" ({layers} of {full} layers)" if layers and full and layers != full else ""


def llm_lines(records: list[dict[str, Any]]) -> list[str]:
    """MFU of each train record, MBU and tokens/s of each decode record."""
    out = []
    for r in records:
        if r.get("_step") not in ("llm-eager", "llm-compiled") or r.get("status") != "ok":
            continue
        if r.get("workload") == "train":
            out.append(
                f"{'MFU':10} train {r.get('label')}{_depth(r)}: MFU {_num(r.get('mfu'), '.3f')}, "
                f"{_num(r.get('tokens_per_s'), '.5g')} tokens/s, {_num(r.get('tflops'), '.4g')} TFLOP/s"
            )
        elif r.get("workload") == "decode":
            out.append(
                f"{'MBU':10} decode {r.get('label')}{_depth(r)} [{r.get('kernel')}]: MBU {_num(r.get('mbu'), '.3f')}, "
                f"{_num(r.get('output_tokens_per_s'), '.5g')} tokens/s, TPOT {_seconds(r.get('tpot_median_s'))}, "
                f"TTFT {_seconds(r.get('ttft_median_s'))}"
                + (f", compile {_num(r.get('compile_s'), '.3g', ' s')}" if r.get("compile_s") else "")
            )
    return out or [f"{'MFU/MBU':10} no LLM record finished"]


def _headline(r: dict[str, Any]) -> str:
    if r.get("family") == "llm":
        return _num(r.get("output_tokens_per_s") or r.get("tokens_per_s"), ".5g", " tok/s")
    if r.get("family") == "collective":
        return _num(r.get("busbw_gb_per_s"), ".5g", " GB/s busbw")
    if r.get("tflops"):
        return _num(r.get("tflops"), ".5g", " TFLOP/s")
    return _num(r.get("gb_per_s"), ".5g", " GB/s")


def records_table(records: list[dict[str, Any]]) -> list[str]:
    """Every record of every step: the node table of this one GPU."""
    head = f"{'step':12} {'workload':10} {'config':44} {'status':7} {'median':>10} {'figure':>20} " \
           f"{'%peak':>6} {'MFU':>6} {'MBU':>6} {'W':>6} {'J/tok':>8}"  # fmt: skip
    out = [head, "-" * len(head)]
    for r in records:
        frac = r.get("frac_peak_flops") or r.get("frac_peak_bw")
        out.append(
            f"{r['_step']:12} {str(r.get('workload'))[:10]:10} {(str(r.get('label')) + _depth(r))[:44]:44} "
            f"{str(r.get('status'))[:7]:7} {_seconds(r.get('time_median_s')):>10} {_headline(r):>20} "
            f"{_num(frac, '.1%'):>6} {_num(r.get('mfu'), '.3f'):>6} {_num(r.get('mbu'), '.3f'):>6} "
            f"{_num(r.get('power_mean_w'), '.0f'):>6} {_num(r.get('energy_per_token_j'), '.3g'):>8}"
        )
        if r.get("status") != "ok" and r.get("reason"):
            out.append(f"{'':12} reason: {str(r['reason'])[:200]}")
    return out if records else ["no records"]


def _tail(lines: list[str], n: int) -> list[str]:
    return [line.rstrip() for line in lines[-n:]]


def build_summary(work: Path, cpu: bool, budget_s: float | None, elapsed_s: float | None) -> tuple[str, dict, str]:
    """(summary text, summary JSON, tables text)."""
    steps = read_steps(work)
    for s in steps:
        s["status"], s["reason"] = classify(s, work)
    versions: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        versions = json.loads((work / "setup" / "versions.json").read_text(encoding="utf-8"))
    records = [r for d in ("llm-eager", "llm-compiled", "accept") for r in _records(work / d)]
    title = (f"tokenbench first light on {versions.get('device_name', '?')}: torch {versions.get('torch', '?')} "
             f"(CUDA {versions.get('torch_cuda')}), Python {versions.get('python', '?')}, "
             f"{'CPU DRY RUN' if cpu else 'GPU'}, {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}")  # fmt: skip
    text = [title, f"time used {_num(elapsed_s, '.0f')} s of a {_num(budget_s, '.0f')} s budget", "", "steps"]
    text += [f"  {s['step']:13} {s['status']:8} rc {s.get('rc', '-'):>4} {s.get('seconds', '0'):>4} s "
             f"(limit {s.get('limit_s', '-'):>4} s)  {s['reason']}" for s in steps]  # fmt: skip
    text += ["", "key figures", *("  " + line for line in probe_lines(work) + llm_lines(records))]
    text += ["", "node table (every record: this GPU's figures)", *("  " + line for line in records_table(records))]
    accept = _log_lines(work / "accept")
    if accept:
        text += ["", "tokenbench accept --profile quick (the end of its output)", *_tail(accept, 40)]
    tables = ["# tokenbench first light: tables", "", *text, ""]
    for name, title_ in (("report/report.md", "tokenbench report --format md"), ("cost/cost.txt", "tokenbench cost")):
        path = work / name
        if path.is_file():
            tables += [f"## {title_}", "", path.read_text(encoding="utf-8", errors="replace"), ""]
    gpu_tests = _log_lines(work / "gpu-tests")
    if gpu_tests:
        tables += ["## pytest -m gpu tests/gpu (the end of its output)", "", *_tail(gpu_tests, 60), ""]
    data = {
        "mode": "cpu-dry-run" if cpu else "gpu",
        "versions": versions,
        "budget_s": budget_s,
        "elapsed_s": elapsed_s,
        "steps": steps,
        "probes": {name: _probe(work, name) for name in ("timer", "copy", "energy")},
        "records": [{k: v for k, v in r.items() if k != "samples_s"} for r in records],
    }
    return "\n".join(text) + "\n", data, "\n".join(tables) + "\n"


def cmd_summary(args: argparse.Namespace) -> int:
    work, out = Path(args.work), Path(args.out)
    text, data, tables = build_summary(work, args.cpu, args.budget_s, args.elapsed_s)
    out.mkdir(parents=True, exist_ok=True)
    for folder in (work, out):
        (folder / "summary.txt").write_text(text, encoding="utf-8")
        _write_json(folder / "summary.json", data)
        (folder / "tables.txt").write_text(tables, encoding="utf-8")
    print(text)
    return OK


# --- the archive ------------------------------------------------------------------------------


def _shortened(path: Path, keep: int) -> bytes | None:
    """A log over `keep` bytes as its first quarter and last three quarters, marked; None if it fits."""
    size = path.stat().st_size
    if size <= keep:
        return None
    with path.open("rb") as f:
        head = f.read(keep // 4)
        f.seek(size - 3 * keep // 4)
        tail = f.read()
    return head + f"\n[... {size - len(head) - len(tail)} bytes cut by first_light.py pack ...]\n".encode() + tail


def _member(path: Path) -> tuple[bytes | None, int]:
    """(the shortened text where a log is too long, else None; its size compressed, roughly)."""
    data = _shortened(path, LOG_KEEP_BYTES) if path.suffix in (".txt", ".log", ".xml") else None
    return data, len(zlib.compress(data if data is not None else path.read_bytes(), 1))


def pack(work: Path, archive: Path, limit: int) -> list[str]:
    """Archive WORK as first_light/ in `archive`, at most `limit` bytes: logs over LOG_KEEP_BYTES
    keep their ends, and while the archive is too large the files that take most of it are left
    out. Returns what was cut or left out (also in the archive's MANIFEST.txt)."""
    members = {p.relative_to(work).as_posix(): (p, *_member(p)) for p in sorted(work.rglob("*")) if p.is_file()}
    dropped: list[str] = []
    while True:
        notes = [f"left out (archive over {limit} bytes): {d}" for d in dropped]
        notes += [f"shortened to its ends: {rel} ({path.stat().st_size} bytes)"
                  for rel, (path, data, _) in members.items() if data is not None and rel not in dropped]  # fmt: skip
        with tarfile.open(archive, "w:gz", compresslevel=6) as tar:
            for rel, (path, data, _) in members.items():
                if rel in dropped:
                    continue
                if data is None:
                    tar.add(path, arcname=f"first_light/{rel}")
                else:
                    _add_bytes(tar, f"first_light/{rel}", data, path.stat().st_mtime)
            manifest = "\n".join(notes) or "nothing cut or left out"
            _add_bytes(tar, "first_light/MANIFEST.txt", (manifest + "\n").encode(), time.time())
        left = [rel for rel in members if rel not in dropped]
        if archive.stat().st_size <= limit or not left:
            return notes if archive.stat().st_size <= limit else [*notes, "archive still over its limit"]
        dropped.append(max(left, key=lambda rel: members[rel][2]))


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), int(mtime)
    tar.addfile(info, io.BytesIO(data))


def cmd_pack(args: argparse.Namespace) -> int:
    work, out = Path(args.work), Path(args.out)
    others = sum((out / name).stat().st_size for name in OUT_FILES if (out / name).is_file())
    notes = pack(work, out / ARCHIVE, OUT_LIMIT_BYTES - others - 64 * 1024)
    files = sorted(p for p in out.iterdir() if p.is_file())
    for p in files:
        print(f"{p.stat().st_size:>10}  {p}")
    total = sum(p.stat().st_size for p in files)
    print(f"{total:>10}  in {len(files)} files (limit: 8 files, {OUT_LIMIT_BYTES} bytes)")
    for note in notes:
        print(f"pack: {note}")
    return OK if total <= OUT_LIMIT_BYTES and len(files) <= 8 else FAILED


# --- command line -----------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("versions").add_argument("file")
    for name in ("timer", "copy", "energy"):
        p = sub.add_parser(name)
        p.add_argument("file")
        p.add_argument("--cpu", action="store_true")
        p.set_defaults(probe=name)
    p = sub.add_parser("suite")
    p.add_argument("file")
    p.add_argument("--kind", choices=("eager", "compiled"), required=True)
    p.add_argument("--cpu", action="store_true")
    sub.add_parser("accept").add_argument("--cpu", action="store_true")
    for name in ("report", "cost"):
        p = sub.add_parser(name)
        p.add_argument("work")
        p.add_argument("--cpu", action="store_true")
    p = sub.add_parser("summary")
    p.add_argument("work")
    p.add_argument("out")
    p.add_argument("--cpu", action="store_true")
    p.add_argument("--budget-s", type=float, default=None)
    p.add_argument("--elapsed-s", type=float, default=None)
    p = sub.add_parser("pack")
    p.add_argument("work")
    p.add_argument("out")
    return ap


COMMANDS = {"versions": cmd_versions, "timer": cmd_ratio, "copy": cmd_ratio, "energy": cmd_energy,
            "suite": cmd_suite, "accept": cmd_accept, "report": cmd_report, "cost": cmd_cost,
            "summary": cmd_summary, "pack": cmd_pack}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return COMMANDS[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
