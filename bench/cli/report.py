"""`tokenbench report`: the results of runs as tables, CSV, Markdown, HTML and plots."""

from __future__ import annotations

import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from bench.cli.console import err, fail, line, out
from bench.cli.results import CatalogOpt, ResultsArg, SiteOpt, _catalog, _runs
from bench.text import plain


class ReportFormat(str, Enum):
    table = "table"
    md = "md"
    csv = "csv"


def check_html_path(html: Path) -> None:
    """Fail (one line, exit 2) before any work when the page could not be written where asked."""
    parent = html.parent if str(html.parent) else Path(".")
    if html.is_dir():
        fail(f"--html {html}: is a folder; give a file name such as {html / 'report.html'}")
    if not parent.is_dir():
        fail(f"--html {html}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK) or (html.exists() and not os.access(html, os.W_OK)):
        fail(f"--html {html}: not writable")


def report(
    results: ResultsArg,
    fmt: Annotated[ReportFormat, typer.Option("--format", help="stdout: table, md or csv")] = ReportFormat.table,
    html: Annotated[
        Path | None, typer.Option(help="also write the self-contained HTML page (tables and plots) to this file")
    ] = None,
    catalog: CatalogOpt = None,
    site: SiteOpt = None,
) -> None:
    """One headline, then one table per workload family across runs, nodes and GPUs; optionally an HTML page
    with plots."""
    from bench.report import model as reportmod
    from bench.report.terminal import fit
    from bench.text import markdown_cell

    if html is not None:
        check_html_path(html)
    runs = _runs(results)
    rep = reportmod.build(runs, _catalog(catalog, site))
    if fmt is ReportFormat.csv:
        sys.stdout.write(reportmod.frame(rep).to_csv(index=False))
    elif fmt is ReportFormat.md:
        sys.stdout.write(f"**{markdown_cell(rep.headline)}**\n\n")
        sys.stdout.write("\n".join(g.markdown() for g in [reportmod.runs_grid(rep), *(t.grid() for t in rep.tables)]))
        sys.stdout.write("\n" + "".join(f"- {markdown_cell(n)}\n" for n in rep.notes))
    else:
        line(rep.headline)
        for grid in [reportmod.runs_grid(rep), *(t.grid() for t in rep.tables)]:
            for table in fit(grid, out.width):
                out.print(table)
        for note in rep.notes:
            line(note)
    if html is not None:
        from bench.report.html import render

        try:
            html.write_text(render(rep), encoding="utf-8")
        except OSError as e:
            fail(f"--html {html}: {e.strerror or e}")
        err.print(plain(f"tokenbench: report: {html}"), markup=False, highlight=False, soft_wrap=True)
