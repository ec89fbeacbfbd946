"""The report as one self-contained HTML page: sortable tables, plots embedded, nothing fetched.

Every string from a results file reaches the page through Jinja2's autoescaping, so a hostname
holding `<script>` is shown as text. The page's Content-Security-Policy allows images from data:
URIs and the one script below (by its SHA-256), so even markup that got through could not run.
Plots are SVG inside <img> data URIs: a browser never runs script in an image.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from bench import __version__
from bench.report import columns as marks
from bench.report.model import Report, runs_grid, shown_rows
from bench.report.plots import Plot, all_plots
from bench.results.identity import device_label
from bench.results.writer import utc_now
from bench.text import Grid, cell, plain
from bench.text import plural as count

# Sorts a table by the clicked column: numbers by value (blanks last), text by locale order.
SORT_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, col) {
    th.querySelector("button").addEventListener("click", function () {
      var asc = th.getAttribute("aria-sort") !== "ascending";
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var numeric = th.dataset.numeric === "1";
      rows.sort(function (a, b) {
        var x = a.cells[col].dataset.v, y = b.cells[col].dataset.v;
        if (numeric) {
          x = x === "" ? NaN : Number(x);
          y = y === "" ? NaN : Number(y);
          if (isNaN(x) || isNaN(y)) { return isNaN(x) - isNaN(y); }
          return asc ? x - y : y - x;
        }
        return asc ? x.localeCompare(y) : y.localeCompare(x);
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


LONG_TEXT = 40  # cells longer than this wrap; the rest stay on one line


@dataclass(frozen=True)
class Cell:
    """A table cell: the text shown, the value it sorts by, and its CSS classes."""

    text: str
    sort: str
    cls: str = ""

    @classmethod
    def of(cls, text: str, sort: str, numeric: bool, extra: str = "") -> Cell:
        """A cell with the classes its kind and length call for (numbers right-aligned, long text wrapped)."""
        classes = ["num" if numeric else "", "long" if len(text) > LONG_TEXT else "", extra]
        return cls(text, sort, " ".join(c for c in classes if c))


@dataclass(frozen=True)
class Head:
    """A column heading, and whether the column sorts as numbers."""

    header: str
    numeric: bool


@dataclass
class HtmlTable:
    """A sortable table of the page."""

    id: str
    title: str
    columns: list[Head]
    rows: list[list[Cell]]
    legend: list[str] = field(default_factory=list)  # what the marks in its cells mean


def _sort_value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, (int, float)):
        return repr(float(value))
    return cell(value)


def family_table(report: Report, index: int) -> HtmlTable:
    """The report's `index`th family table, each cell sorting by its raw value."""
    t = report.tables[index]
    rows = []
    for r in t.rows:
        cells = []
        for c in t.columns:
            text = c.show(r)
            extra = f"status-{r['status']}" if c.key == "status" else ("marked" if text != c.fmt(r.get(c.key)) else "")
            cells.append(Cell.of(text, _sort_value(r.get(c.key)), c.numeric, extra))
        rows.append(cells)
    return HtmlTable(str(index), t.title, [Head(c.header, c.numeric) for c in t.columns], rows, marks.legend(t.rows))


def grid_table(grid: Grid, table_id: str) -> HtmlTable:
    """A text grid as a page table, each cell sorting by its text."""
    heads = [Head(c, c in grid.right) for c in grid.columns]
    rows = [[Cell.of(v, v, h.numeric) for v, h in zip(row, heads, strict=True)] for row in grid.rows]
    return HtmlTable(table_id, grid.title, heads, rows)


COST_COLUMNS = [Head("scenario", False), Head("term", False), Head("$/GPU-hour", True),
                Head("$/useful GPU-hour", True), Head("$/Mtok", True), Head("owning cheaper above", True),
                Head("price date", False), Head("source", False)]  # fmt: skip


def cost_tables(report: Report) -> list[HtmlTable]:
    """Per GPU model: the price of every scenario for the records the cost plot shows."""
    cost = report.cost
    if cost is None:
        return []
    out: list[HtmlTable] = []
    for gpu in sorted(cost.gpus):
        rows = shown_rows(cost, gpu)
        if not rows:
            continue
        title = f"{gpu}: {rows[0]['label']}, {rows[0]['tokens']} tokens at {rows[0]['tokens_per_s']:.5g}/s"
        cells = []
        for r in sorted(rows, key=lambda r: r["usd_per_mtok"]):
            be = r.get("break_even_utilisation")
            values: list[tuple[str | None, Any]] = [
                (r["provider"], r["provider"]), (r["term"], r["term"]),
                (f"{r['usd_per_gpu_hour']:.3f}", r["usd_per_gpu_hour"]),
                (f"{r['usd_per_useful_gpu_hour']:.3f}", r["usd_per_useful_gpu_hour"]),
                (f"{r['usd_per_mtok']:.4g}", r["usd_per_mtok"]),
                ("-" if be is None else f"{100 * be:.0f}% use", be),
                (r.get("price_date"), r.get("price_date")), (r.get("price_source"), r.get("price_source")),
            ]  # fmt: skip
            cells.append([Cell.of(cell(text), _sort_value(v), h.numeric) for (text, v), h in zip(values, COST_COLUMNS,
                                                                                             strict=True)])  # fmt: skip
        out.append(HtmlTable(f"cost-{len(out)}", cell(title), COST_COLUMNS, cells))
    return out


def _plot_view(p: Plot) -> dict[str, Any]:
    src = "data:image/svg+xml;base64," + base64.b64encode(p.svg).decode("ascii") if p.svg else None
    return {"key": p.key, "title": p.title, "caption": p.caption, "src": src, "reason": p.reason}


def summary(report: Report) -> str:
    """The line under the page's title: records, runs, nodes and devices, and when and by what it was made."""
    nodes = {r.get("hostname") for r in report.records}
    devices = {(r.get("hostname"), device_label(r)) for r in report.records}
    return (f"{count(len(report.records), 'record')} from {count(len(report.runs), 'run')} on "
            f"{count(len(nodes), 'node')} and {count(len(devices), 'device')}; generated {utc_now()} by tokenbench "
            f"{__version__}")  # fmt: skip


def render(report: Report, plots: list[Plot] | None = None) -> str:
    """The whole page; `plots` None draws them all."""
    env = Environment(loader=PackageLoader("bench.report", "templates"), autoescape=select_autoescape(default=True))
    script_hash = "sha256-" + base64.b64encode(hashlib.sha256(SORT_SCRIPT.encode()).digest()).decode()
    plots = all_plots(report.records, report.cost) if plots is None else plots
    cost_hint = ""
    if report.cost:
        u = report.cost.catalog.value("utilisation")
        cost_hint = (
            f"At {100 * u:g}% utilisation and the catalog's site figures; owned is amortised capital, "
            "maintenance, colocation and measured energy. Full analysis: tokenbench cost RESULTS."
        )
    return env.get_template("report.html.j2").render(
        headline=report.headline,
        summary=summary(report),
        runs=grid_table(runs_grid(report), "runs"),
        tables=[family_table(report, i) for i in range(len(report.tables))],
        cost_tables=cost_tables(report),
        cost_hint=cost_hint,
        plots=[_plot_view(p) for p in plots],
        notes=[plain(n) for n in report.notes],
        script=SORT_SCRIPT,
        script_hash=script_hash,
    )
