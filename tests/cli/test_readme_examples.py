"""Every example command of README.md runs as written on the CPU, or is listed here with why CI cannot run it.

The commands are read from README.md's ```bash blocks (one per line, the comment after `#` dropped).
Each must be in EXAMPLES, and each entry of EXAMPLES must still be in README.md, so a new example is
classified the day it is written:
- RUN: run as written, in a temp folder, after the first `tokenbench run` has written results/ there;
- SMALL: run with the listed settings made CPU-sized (the same options, smaller numbers);
- ONE_LINE: needs GPU results, so on a CPU it must stop with exit 2 and this one-line reason;
- SKIP: cannot run in CI (the reason says why, and which test covers it where one does).
The pytest example of tests/README.md runs too, at CPU sizes: on a CPU the catalog knows no peak, so a
record's `frac_peak_flops` is None and an example that compares it without a check is a TypeError.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN, SMALL, ONE_LINE, SKIP = "run", "small", "one-line", "skip"
FIRST = "tokenbench run"  # writes results/ that the later examples read

# command as written -> (how, detail: the substitutions for SMALL, the expected error for ONE_LINE, else why)
EXAMPLES: dict[str, tuple[str, object]] = {
    "python3 -m venv .venv && .venv/bin/pip install torch==2.13.0 -e . && .venv/bin/tokenbench run":
        (SKIP, "installs from the package index; CI installs the same way before it runs the tests"),
    "command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq --no-install-recommends "
    "chromium); python3 -m venv .venv && .venv/bin/pip install torch==2.13.0 -e '.[test]' && .venv/bin/pytest":
        (SKIP, "the test command itself: CI runs it verbatim (tests/test_readme.py checks .ci/run holds it)"),
    "tokenbench run": (RUN, None),
    "tokenbench run --suite node --out results/":
        (SKIP, "the GPU suite: on a CPU it predicts and skips its long entries (tests/measure covers that path)"),
    "tokenbench run --workload gemm": (RUN, None),
    "tokenbench run -w gemm:m=8192,n=8192,k=8192,dtype=fp8 -w copy:size_mib=4096":
        (SMALL, {"m=8192,n=8192,k=8192": "m=256,n=256,k=256", "size_mib=4096": "size_mib=64"}),
    "tokenbench run --device cuda:1 --seed 1234": (SKIP, "needs a second GPU"),
    "tokenbench run -w decode:model=llama-3.1-8b,batch=32,compile=true": (RUN, None),  # skipped by its prediction
    "tokenbench run --timeline --idle-s 10": (SMALL, {"--idle-s 10": "--idle-s 1 --workload copy"}),
    "tokenbench run --suite collectives --nproc 8": (ONE_LINE, "no GPU is usable here"),  # needs 8 GPUs
    "tokenbench run --suite dist-smoke --device cpu --nproc 2":
        (SKIP, "about 20 s on 2 cores; tests/measure/test_ranks.py runs this very suite on 2 CPU processes"),
    "tokenbench accept": (SKIP, "about 8 s; tests/cli/test_accept.py runs it on the CPU with a shorter soak"),
    "tokenbench accept --profile full": (SKIP, "a 5-minute soak on every GPU"),
    "tokenbench report results/ --html report.html": (RUN, None),
    "tokenbench compare baseline/ candidate/": (RUN, None),  # baseline/ and candidate/: copies of results/
    "tokenbench compare --reference results/":
        (ONE_LINE, "references are kept for catalog GPUs only"),
    "tokenbench cost results/": (ONE_LINE, "nothing to price"),
    "tokenbench cost --gpu H100-SXM --tokens-per-s 1557 --usd-per-gpu-hour 1.30": (RUN, None),
    "tokenbench cost --gpu H100-SXM --tokens-per-s 1557 --profile neocloud --fleet-mw 100 --life-years 6 "
    "--rent-decline 0.2": (RUN, None),
    "tokenbench serve --base-url http://127.0.0.1:8000 --num-prompts 500 --request-rate 8":
        (SKIP, "needs a serving engine: tests/serve/test_cli_serve.py runs serve against a stub server, "
               "tests/serve/test_real_server.py against llama.cpp's"),
    "tokenbench list": (RUN, None),
    "tokenbench env": (RUN, None),
    "tokenbench --version": (RUN, None),
}  # fmt: skip
SMALL_PYTEST = {"m=8192, n=8192, k=8192": "m=256, n=256, k=256", 'model="llama-3.1-8b"': 'model="tiny"',
                "batch=32": "batch=2", "prompt_len=512": "prompt_len=32", "new_tokens=128": "new_tokens=8"}  # fmt: skip


def readme_examples() -> list[str]:
    """Every command line in README.md's bash blocks, its trailing comment dropped."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = [ln for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S) for ln in block.splitlines()]
    return [re.sub(r"\s+#\s.*$", "", ln).strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def test_every_readme_example_is_classified_and_every_entry_is_still_in_the_readme():
    found = readme_examples()
    assert not [c for c in found if c not in EXAMPLES], "classify these README examples in EXAMPLES"
    assert not [c for c in EXAMPLES if c not in found], "these EXAMPLES are no longer in README.md"
    for how, detail in EXAMPLES.values():
        assert how in (RUN, SMALL, ONE_LINE, SKIP) and (detail if how != RUN else True), (how, detail)


def tokenbench(cwd: Path, command: str) -> subprocess.CompletedProcess[str]:
    """Run a `tokenbench ...` example line as the installed command would, from `cwd`."""
    args = command.split()[1:]
    env = {**os.environ, "COLUMNS": "100"}
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env)  # fmt: skip


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder where the README's first `tokenbench run` has run, with baseline/ and candidate/ copies."""
    cwd = tmp_path_factory.mktemp("readme")
    proc = tokenbench(cwd, FIRST)
    assert proc.returncode == 0, proc.stderr
    for name in ("baseline", "candidate"):
        shutil.copytree(cwd / "results", cwd / name)
    return cwd


def small(command: str, subs: dict[str, str]) -> str:
    for old, new in subs.items():
        assert old in command, (old, command)
        command = command.replace(old, new)
    return command


@pytest.mark.parametrize("command", [c for c, (how, _) in EXAMPLES.items() if how != SKIP and c != FIRST])
def test_readme_example_runs_on_the_cpu(workdir, command):
    how, detail = EXAMPLES[command]
    proc = tokenbench(workdir, small(command, detail) if how == SMALL and isinstance(detail, dict) else command)
    if how == ONE_LINE:
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert proc.stderr.count("\n") == 1 and "tokenbench: error:" in proc.stderr and str(detail) in proc.stderr
    else:
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr
    if command.startswith("tokenbench report"):
        assert (workdir / "report.html").stat().st_size > 0


def pytest_example() -> str:
    text = (ROOT / "tests" / "README.md").read_text(encoding="utf-8")
    return next(b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S) if "def test_" in b)


def test_the_pytest_example_of_tests_readme_runs_on_the_cpu(tmp_path):
    """tests/README.md's plugin example at CPU sizes: a CPU has no vendor peak, so the example must allow None."""
    example = pytest_example()
    (tmp_path / "test_node.py").write_text(small(example, SMALL_PYTEST), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--no-cov",
                           "--tokenbench-device", "cpu", "--tokenbench-idle-s", "0", "--benchmark-max-time", "0.2",
                           "test_node.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
