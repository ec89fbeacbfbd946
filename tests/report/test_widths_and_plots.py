"""Tables that keep their numbers at 80 and 100 columns, `--html` checked first, and plots a non-engineer reads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from bench.catalog import prices
from bench.cli import app
from bench.cost.plots import crossings, money, plain_number
from bench.cost.table import PlainTable
from bench.report.model import build
from bench.report.terminal import compact, fit
from bench.results.reader import read_runs
from bench.text import Grid
from tests.report.serve_records import write_serve_run
from tests.support.handmade import write_run

ROOT = Path(__file__).resolve().parents[2]


def rendered(tables, width: int) -> str:
    console = Console(width=width, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    for t in tables:
        console.print(t)
    return console.export_text()


def wide_grid() -> Grid:
    heads = ["node", "device", "run", "workload", "config", "median", "CV", "n", "tokens/s", "TTFT", "TPOT",
             "tok/s/user", "W", "J/token", "$/Mtok owned", "$/Mtok rented"]  # fmt: skip
    g = Grid("LLM workloads", heads, right=set(heads[5:]))
    for gpu in range(2):
        g.add("node-a", f"NVIDIA H100 80GB HBM3 #{gpu}", f"20261101T000000Z-node-a-0{gpu}0001", "decode",
              "llama-3.1-8b b32 pp512+tg128", "1.6 s", "1.1%!", "40", "2560", "12.5 ms", "12.5 ms", "80", "600",
              "0.2344", "$0.396", "$0.176")  # fmt: skip
    return g


@pytest.mark.parametrize("width", [80, 100])
def test_a_wide_table_keeps_every_figure_and_header_at_narrow_widths(width):
    grid = wide_grid()
    text = rendered(fit(grid, width), width)
    assert max(len(line) for line in text.splitlines()) <= width
    for figure in grid.rows[0][5:]:
        assert figure in text, figure  # whole, never cut or folded
    for header in grid.columns[3:]:
        assert header in text, header  # never blank, never cut ("node", "device", "run" are shared: in the title)
    assert "…" not in text
    assert "device NVIDIA H100 80GB HBM3" in text and "..000001" in text  # shared model in the title, runs cut


def test_a_table_that_fits_is_left_as_it_is():
    grid = wide_grid()
    tables = fit(grid, 400)
    assert len(tables) == 1 and len(tables[0].columns) == len(grid.columns)
    assert compact(Grid("t", ["a"], [["x"]])).columns == ["a"]  # one row: nothing is "shared"


@pytest.mark.parametrize("columns", ["80", "100"])
def test_report_in_a_narrow_terminal_keeps_its_numbers(tmp_path, columns):
    write_run(tmp_path / "a", "node-a", gpu=0)
    write_run(tmp_path / "a", "node-a", gpu=1, seed=1)
    write_serve_run(tmp_path / "s")
    proc = subprocess.run([sys.executable, "-m", "bench", "report", str(tmp_path)], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": columns}, cwd=ROOT, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    boxed = [ln for ln in proc.stdout.splitlines() if ln[:1] in "┃│┏┡└"]
    assert boxed and max(map(len, boxed)) <= int(columns)
    for figure in ("610.8", "2684", "42667", "$0.396", "$0.176", "398.83", "510.9", "yes 100.0%", "no 0.0%"):
        assert figure in proc.stdout, figure
    assert "…" not in proc.stdout


@pytest.mark.parametrize("width", [80, 100])
def test_cost_tables_keep_their_numbers_at_narrow_widths(width):
    t = PlainTable("$ per million tokens")
    t.add_column("record")
    for h in ("tokens", "tok/s", "user tok/s", "W", "owned", *"ABCDEFGHI"):
        t.add_column(h, justify="right")
    t.add_row("given rate", "tokens", "1,557", "-", "700~", *(f"${v:.4f}" for v in np.linspace(0.2, 2.6, 10)))
    text = rendered([t], width)
    assert max(len(line) for line in text.splitlines()) <= width and "…" not in text
    for v in np.linspace(0.2, 2.6, 10):
        assert f"${v:.4f}" in text
    assert "continued (2 of" in text and text.count("given") >= 2  # split, the key column repeated


def test_html_path_is_checked_before_any_work(tmp_path):
    runner = CliRunner()
    missing_results = str(tmp_path / "no-such-results")  # not read: the path check comes first
    for html, why in ((tmp_path, "is a folder"), (tmp_path / "nope" / "r.html", "does not exist")):
        result = runner.invoke(app, ["report", missing_results, "--html", str(html)])
        assert result.exit_code == 2 and why in result.output, result.output
        assert len([ln for ln in result.output.splitlines() if ln]) == 1
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        result = runner.invoke(app, ["report", missing_results, "--html", str(locked / "r.html")])
        assert result.exit_code == 2 and "not writable" in result.output


def test_prices_and_axis_numbers_read_plainly():
    assert [money(0.2), money(0.5), money(1.0), money(12.5), money(1000.0), money(0.0042)] == [
        "$0.20", "$0.50", "$1", "$12.50", "$1,000", "$0.0042"]  # fmt: skip
    assert [plain_number(v) for v in (0.05, 1.0, 2.0, 500.0, 2000.0, 1e6)] == [
        "0.05", "1", "2", "500", "2,000", "1,000,000"]  # fmt: skip


def test_break_even_crossings_by_hand():
    u = np.array([0.2, 0.4, 0.6, 0.8])
    owned = 1.0 / u  # 5, 2.5, 1.667, 1.25
    rented = np.full(4, 2.0)  # crosses between 0.4 (2.5) and 0.6 (1.667): 0.4 + 0.2 x 0.5 / 0.8333 = 0.52
    assert crossings(u, owned, rented) == pytest.approx([0.52])
    assert crossings(u, owned, np.full(4, 9.0)) == []  # renting cheaper everywhere: no crossing


def test_every_report_plot_has_plain_ticks_and_keeps_its_marks(tmp_path):
    write_run(tmp_path / "a", "node-a", unstable=True, time_p5_s=0.9, time_p95_s=1.2)
    write_serve_run(tmp_path / "s")
    from bench.report.plots import all_plots

    rep = build(read_runs(tmp_path), prices.packaged())
    plots = {p.key: p for p in all_plots(rep.records, rep.cost)}
    assert all(p.svg for p in plots.values()), {k: p.reason for k, p in plots.items()}
    inter = plots["interactivity"].svg or b""
    assert b"dashed: a point" in inter and b"1e+" not in inter and b"10^" not in inter
    assert b"$0." in (plots["cost"].svg or b"")  # two-decimal prices on the bars


def test_tables_are_laid_out_for_columns_when_stdout_is_not_a_terminal(monkeypatch):
    from bench.cli import console

    monkeypatch.setattr(console.sys.stdout, "isatty", lambda: False, raising=False)
    for columns, width in (("80", 80), ("100", 100), ("", console.PIPE_WIDTH), ("12", console.PIPE_WIDTH)):
        monkeypatch.setenv("COLUMNS", columns)
        assert console.stdout_width() == width


@pytest.mark.parametrize("width", [80, 100, 130])
def test_the_run_tables_keep_every_header_and_figure_at_any_width(width):
    """`tokenbench run` prints its tables through the same fitting as `report`: no header cut to '…'."""
    from bench.report.table import results_tables

    records = read_runs(ROOT / "tests" / "data" / "cpu-smoke")[0].records
    text = rendered(
        results_tables(records, title="tokenbench suite smoke on AMD EPYC (cpu), run r", width=width), width
    )
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= width
    for header in ("median", "CV", "TFLOP/s", "GB/s", "% peak", "check", "tokens/s", "TTFT", "TPOT", "tok/s/user"):
        assert f" {header} " in text, header
    llm = [r for r in records if r.get("family") == "llm" and r["status"] == "ok"]
    assert f"{llm[0]['tokens_per_s']:,.0f}" in text  # a figure, whole


def test_a_lone_row_keeps_its_config_and_status_but_names_its_identity_in_the_title():
    g = Grid("copy", ["node", "device", "run", "workload", "config", "status", "median"], right={"median"})
    g.add("vm", "AMD EPYC", "20261129T161556Z-vm-6d14fa", "copy", "64 MiB", "ok", "2.489 ms")
    out = compact(g)
    assert out.columns == ["config", "status", "median"] and out.rows == [["64 MiB", "ok", "2.489 ms"]]
    assert out.title == "copy (node vm; device AMD EPYC; run 20261129T161556Z-vm-6d14fa; workload copy)"
