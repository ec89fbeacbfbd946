"""The static type check: mypy over bench/ and workloads/, as configured in pyproject.toml.

The CUDA, NVML and NCCL paths never run without a GPU, so this is what checks them in CI: every
torch.cuda and torch.distributed call against torch's own annotations, and every pynvml function
and constant against nvidia-ml-py's source. About 11 s from a clean clone on 2 cores; mypy's
cache (under pytest's cache directory) makes a repeat run about 2 s.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_finds_no_type_errors(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    pytest_cache = getattr(request.config, "cache", None)  # None under -p no:cacheprovider
    cache = pytest_cache.mkdir("mypy") if pytest_cache is not None else tmp_path
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(cache), "--no-color-output", "--no-error-summary"],
        cwd=ROOT,  # the files and settings come from [tool.mypy] in pyproject.toml
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        report = (proc.stdout + proc.stderr).strip()
        errors = sum(": error:" in line for line in report.splitlines())
        pytest.fail(f"mypy found {errors} type error(s) (exit {proc.returncode}):\n{report}", pytrace=False)
