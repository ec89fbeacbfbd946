"""compare as text: figures whole at 80-100 columns, headers never blank, the headline last, plurals right."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from bench.compare.model import compare
from bench.compare.report import grids, headline, lines, markdown, tables
from bench.results.reader import read_runs
from bench.text import duration, percent_interval, signed_percent
from tests.support.handmade import CONFIGS, write_run

SMOKE = sorted((Path(__file__).resolve().parents[1] / "data" / "cpu-smoke").glob("*.jsonl"))
GEMM = CONFIGS[0][2]


def render(result, width: int) -> tuple[list[str], bool]:
    console = Console(width=width, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    shown, compact = tables(result, width)
    for table in shown:
        console.print(table)
    return console.export_text().splitlines(), compact


def smoke():
    return compare(read_runs(SMOKE[0]), read_runs(SMOKE[1]), baseline_label="baseline A",
                   candidate_label="candidate B")  # fmt: skip


def node(tmp_path: Path, gpus: int):
    write_run(tmp_path / "base", "ref")
    for gpu in range(gpus):
        write_run(tmp_path / "cand", "node7", gpu=gpu, seed=gpu + 1, slowdown={GEMM: 0.12} if gpu == 2 else 0.0)
    return compare(read_runs(tmp_path / "base"), read_runs(tmp_path / "cand"))


def figures(result) -> list[str]:
    out = []
    for c in result.comparisons:
        out += [duration(c.baseline_median_s), duration(c.candidate_median_s), signed_percent(c.change),
                percent_interval(c.ci_low, c.ci_high)]  # fmt: skip
    return out


@pytest.mark.parametrize("width", [80, 90, 100])
@pytest.mark.parametrize("case", ["smoke", "node of 4 GPUs"])
def test_narrow_terminals_keep_every_figure_whole_and_every_header(tmp_path, width, case):
    result = smoke() if case == "smoke" else node(tmp_path, 4)
    printed, compact = render(result, width)
    assert compact
    assert max(len(line) for line in printed) <= width
    text = "\n".join(printed)
    for figure in figures(result):  # each on one line, never folded
        assert any(figure in line for line in printed), figure
    for grid in grids(result, compact=True):
        header = next(line for line in printed if grid.columns[0] in line and grid.columns[-1] in line)
        for name in grid.columns:
            assert name in header, f"{name!r} not whole in the header of {grid.title!r} at {width} columns"
    assert "why" not in text.split()  # the reasons go under the table
    reasons = [line for line in lines(result, compact=True) if line.startswith(("WARN:", "FAIL:"))]
    assert len(reasons) == sum(bool(c.why) for c in result.comparisons) > 0


def test_a_wide_terminal_keeps_the_wide_layout_with_its_reasons():
    printed, compact = render(smoke(), 160)
    assert not compact
    assert any("why" in line.split() for line in printed[:5])
    assert not any(line.startswith(("WARN:", "FAIL:")) for line in lines(smoke()))


def test_the_headline_is_last_with_the_verdict_what_was_compared_and_the_counts(tmp_path):
    result = node(tmp_path, 4)
    assert headline(result) == (f"verdict: FAIL: 6 configurations on 4 GPUs, {result.candidate_label} against "
                                f"{result.baseline_label}: 23 PASS, 1 FAIL")  # fmt: skip
    assert lines(result)[-1] == headline(result) and lines(result, compact=True)[-1] == headline(result)
    assert markdown(result).rstrip().splitlines()[-1] == "- " + headline(result).replace("_", "\\_")
    slowest = next(line for line in lines(result) if line.startswith("slowest GPU"))
    assert "(geometric mean over 6 configurations)" in slowest


def test_one_configuration_and_one_gpu_are_singular(tmp_path):
    skip = tuple(c[2] for c in CONFIGS[1:])
    write_run(tmp_path / "base", "ref", skip=skip)
    write_run(tmp_path / "cand", "node", seed=1, skip=skip)
    result = compare(read_runs(tmp_path / "base"), read_runs(tmp_path / "cand"))
    assert headline(result).startswith("verdict: PASS: 1 configuration on 1 GPU, ")
    assert headline(result).endswith(": 1 PASS")
