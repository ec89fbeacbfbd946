"""The README's promises: CI runs its test command verbatim, and the code passes the linter."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    pattern = r"```bash\n((?:command -v chromium[^\n]*; )?python3 -m venv[^\n]+)\n```"
    return re.findall(pattern, (ROOT / "README.md").read_text())


def test_readme_has_a_run_and_a_test_command():
    run, test = readme_commands()
    assert run.endswith("tokenbench run") and test.endswith("pytest")


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci


def test_readme_lists_every_workload_and_suite():
    import workloads
    from bench.measure.suites import builtin_names

    text = (ROOT / "README.md").read_text()
    for name in [*workloads.REGISTRY, *builtin_names()]:
        assert f"`{name}`" in text, name


@pytest.mark.skipif(importlib.util.find_spec("ruff") is None, reason="ruff is not installed (pip install -e '.[test]')")
@pytest.mark.parametrize("args", [["check"], ["format", "--check"]])
def test_ruff_is_clean(args):
    proc = subprocess.run([sys.executable, "-m", "ruff", *args, str(ROOT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
