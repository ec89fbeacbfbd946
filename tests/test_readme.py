"""The READMEs' promises: CI runs the front page's test command verbatim, the front page stays a front
page, every link between the READMEs lands, each formula is written once, and the code passes the linter."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FRONT_PAGE_MAX_LINES = 250
# The READMEs beside what they describe; the front page links to each of them.
FOLDER_READMES = (
    "workloads",
    "bench",
    "bench/cost",
    "bench/serve",
    "bench/compare",
    "bench/accept",
    "results",
    "results/reference",
    "docker",
    "tests",
)
# One signature of each formula the READMEs state, and the README that states it (the others link to it).
FORMULAS = {
    r"2mnk": "workloads/README.md",
    r"s\(s\+1\)/2": "workloads/README.md",
    r"6N \+ 12": "workloads/README.md",
    r"2\(n-1\)/n": "workloads/README.md",
    r"/ \(M - 1\)": "workloads/README.md",
    r"1 / median TPOT": "workloads/README.md",
    r"flops / time_median_s": "results/README.md",
    r"time_stdev_s / time_mean_s": "results/README.md",
    r"energy_j / \(tokens x energy_window_calls\)": "results/README.md",
    r"3600 / 1e6": "bench/cost/README.md",
    r"r\(1\+r\)\^n": "bench/cost/README.md",
    r"u\* = ": "bench/cost/README.md",
    r"6 N D": "bench/cost/README.md",
}
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def readme_commands() -> list[str]:
    pattern = r"```bash\n((?:command -v chromium[^\n]*; )?python3 -m venv[^\n]+)\n```"
    return re.findall(pattern, (ROOT / "README.md").read_text())


def readmes() -> list[Path]:
    """Every README.md of the project (not those of tools under hidden folders such as .venv)."""
    skip = {"node_modules", "__pycache__", "build", "dist"}
    return sorted(
        p for p in ROOT.rglob("README.md")
        if not any(part.startswith(".") or part in skip or part.endswith(".egg-info")
                   for part in p.relative_to(ROOT).parts[:-1])
    )  # fmt: skip


def prose(text: str) -> str:
    """The text outside fenced code blocks and inline code, where links and headings live."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    return re.sub(r"`[^`\n]*`", "", text)


def anchors(path: Path) -> set[str]:
    """The heading anchors a code host makes: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.M | re.S)
    seen: dict[str, int] = {}
    out = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *#* *$", text, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


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


def test_readme_is_a_front_page():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= FRONT_PAGE_MAX_LINES, f"README.md has {len(lines)} lines; move detail to a folder README"


@pytest.mark.parametrize("folder", FOLDER_READMES)
def test_each_folder_has_its_readme_and_the_front_page_links_it(folder):
    assert (ROOT / folder / "README.md").is_file(), f"{folder}/README.md is missing"
    if folder != "results/reference":  # reached through results/README.md
        assert f"]({folder}/README.md" in (ROOT / "README.md").read_text(encoding="utf-8"), folder


def test_the_readmes_are_found():
    found = {p.relative_to(ROOT).as_posix() for p in readmes()}
    assert {"README.md", *(f"{f}/README.md" for f in FOLDER_READMES)} <= found


@pytest.mark.parametrize("readme", readmes(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_lands(readme):
    broken = []
    for target in LINK.findall(prose(readme.read_text(encoding="utf-8"))):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...: not a file of the project
            continue
        file, _, anchor = target.partition("#")
        path = (readme.parent / file).resolve() if file else readme
        if not path.exists():
            broken.append(f"{target}: no such file")
        elif not path.resolve().is_relative_to(ROOT):
            broken.append(f"{target}: outside the repository")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{target}: no heading #{anchor} in {path.relative_to(ROOT)}")
    assert not broken, f"{readme.relative_to(ROOT)}: " + "; ".join(broken)


@pytest.mark.parametrize("formula", FORMULAS)
def test_each_formula_is_written_in_one_readme(formula):
    holders = [p.relative_to(ROOT).as_posix() for p in readmes() if re.search(formula, p.read_text(encoding="utf-8"))]
    assert holders == [FORMULAS[formula]], f"{formula!r} is in {holders}; state it once and link to it"


@pytest.mark.parametrize("args", [["check"], ["format", "--check"]])
def test_ruff_is_clean(args):
    if importlib.util.find_spec("ruff") is None:
        if os.environ.get("CI"):
            pytest.fail("ruff is not installed: the test extras install it, and CI must lint")
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    proc = subprocess.run([sys.executable, "-m", "ruff", *args, str(ROOT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
