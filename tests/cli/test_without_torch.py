"""Reading, reporting, comparing and pricing never import torch: they work where torch cannot load."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SMOKE = sorted((ROOT / "tests" / "data" / "cpu-smoke").glob("*.jsonl"))


@pytest.fixture(scope="module")
def no_torch(tmp_path_factory) -> dict[str, str]:
    """An environment whose `import torch` raises, as on a laptop or CI box without it."""
    shadow = tmp_path_factory.mktemp("shadow") / "torch"
    shadow.mkdir()
    (shadow / "__init__.py").write_text('raise ImportError("torch is unimportable in this test")\n')
    return {"PYTHONPATH": str(shadow.parent), "PATH": "/usr/bin:/bin", "COLUMNS": "160"}


def tokenbench(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)  # fmt: skip


def test_the_shadow_really_hides_torch(no_torch):
    proc = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True, text=True, env=no_torch)
    assert proc.returncode == 1 and "torch is unimportable" in proc.stderr


def test_importing_the_cli_does_not_import_torch(no_torch):
    code = "import sys, bench.cli; assert 'torch' not in sys.modules; print('ok')"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=no_torch, cwd=ROOT)
    assert proc.returncode == 0 and proc.stdout == "ok\n", proc.stderr


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["cost", "--help"], ["run", "--help"]])
def test_help_without_torch(no_torch, args):
    proc = tokenbench(no_torch, *args)
    assert proc.returncode == 0, proc.stderr
    assert "Usage: " in proc.stdout


def test_version_without_torch(no_torch):
    import bench

    proc = tokenbench(no_torch, "--version")
    assert (proc.returncode, proc.stdout) == (0, f"tokenbench {bench.__version__}\n"), proc.stderr


def test_cost_without_torch(no_torch):
    proc = tokenbench(no_torch, "cost", "--gpu", "H100-SXM", "--tokens-per-s", "1557", "--usd-per-gpu-hour", "1.30",
                      "--format", "json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert '"H100-SXM"' in proc.stdout and "1.3" in proc.stdout


def test_report_without_torch(no_torch):
    proc = tokenbench(no_torch, "report", str(SMOKE[0].parent), "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    n_records = sum(len(path.read_text().splitlines()) for path in SMOKE)
    assert proc.stdout.count("\n") == 1 + n_records  # a header row, then a row per record of both runs


def test_html_report_without_torch(no_torch, tmp_path):
    page = tmp_path / "report.html"
    proc = tokenbench(no_torch, "report", str(SMOKE[0].parent), "--html", str(page))
    assert proc.returncode == 0, proc.stderr
    assert page.read_text().lower().startswith("<!doctype html>") and SMOKE[0].stem in page.read_text()


def test_compare_without_torch(no_torch):
    proc = tokenbench(no_torch, "compare", str(SMOKE[0]), str(SMOKE[1]), "--format", "json")
    assert proc.returncode in (0, 1), proc.stderr  # a verdict (PASS/WARN or FAIL), not an error
    assert '"verdict"' in proc.stdout


def test_run_says_what_is_missing_without_torch(no_torch):
    proc = tokenbench(no_torch, "run", "--device", "cpu", "--no-progress", "--idle-s", "0")
    assert proc.returncode != 0 and "torch is unimportable" in proc.stderr
