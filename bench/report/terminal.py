"""Tables that keep every figure at any terminal width (80 columns and up).

A table wider than the terminal is made narrower in this order, never dropping a figure:
1. identity columns whose value is the same on every row leave the table for its title (for a lone
   row: node, device, run and workload);
2. run ids are cut to their last part (the part that tells runs of one node apart);
3. text columns fold onto several lines (never under their header's width);
4. the figure columns are split over several tables, each repeating the row's text columns.
Headers are never cut: every column is at least as wide as its header.
"""

from __future__ import annotations

from rich import box
from rich.table import Table
from rich.text import Text

from bench.text import VERDICT_STYLES, Grid, plain

BORDER = 3  # a column's share of padding and rule in a boxed table
FOLD_TO = 16  # the narrowest a folded text column is made, when its header allows
ALONE = ("node", "device", "run", "workload")  # a lone row's identity columns, folded into the title too


def _natural(grid: Grid, i: int) -> int:
    return max([len(grid.columns[i]), *(len(row[i]) for row in grid.rows)])


def _short_run(run_id: str) -> str:
    """'20261101T000000Z-node-a-010001' -> '..010001': the part that differs between the GPUs of one node."""
    return ".." + run_id.rsplit("-", 1)[-1] if "-" in run_id and len(run_id) > 12 else run_id


def _device_prefix(values: list[str]) -> str:
    """The device model that every device cell shares ("NVIDIA H100 80GB HBM3 "), when they differ only in "#N"."""
    heads = {v.rpartition(" #")[0] for v in values}
    return next(iter(heads)) + " " if len(heads) == 1 and all(" #" in v for v in values) else ""


def compact(grid: Grid) -> Grid:
    """The grid without the text columns whose value every row shares (named in the title), run ids cut, and
    a device model that every row shares in the title ("#0", "#1" left in the cells)."""
    if not grid.rows:
        return grid
    keep, shared, cut = [], [], {}
    for i, name in enumerate(grid.columns):
        values = [row[i] for row in grid.rows]
        foldable = len(grid.rows) > 1 or name in ALONE  # one row: its identity, never its config or status
        if foldable and name not in grid.right and len(set(values)) == 1 and name != grid.verdict_column:
            if values[0] not in ("", "-"):
                shared.append(f"{name} {values[0]}")
            continue
        prefix = _device_prefix(values) if name == "device" else ""
        if prefix:
            shared.append(f"device {prefix.strip()}")
            cut[i] = len(prefix)
        keep.append(i)
    folded_in = "; ".join(shared)
    title = (f"{grid.title} ({folded_in})" if grid.title else folded_in) if shared else grid.title
    out = Grid(title, [grid.columns[i] for i in keep], right=set(grid.right), verdict_column=grid.verdict_column)
    for row in grid.rows:
        out.rows.append([_short_run(row[i]) if grid.columns[i] == "run" else row[i][cut.get(i, 0) :] for i in keep])
    return out


def _numbered(grid: Grid) -> Grid:
    """The grid with a first column "#" numbering its rows, so split tables can be read side by side."""
    out = Grid(grid.title, ["#", *grid.columns], right=set(grid.right), verdict_column=grid.verdict_column)
    out.rows = [[str(n), *row] for n, row in enumerate(grid.rows, 1)]
    return out


def _table(grid: Grid, cols: list[int], folded: dict[int, int]) -> Table:
    table = Table(title=Text(plain(grid.title)), title_justify="left", header_style="bold", box=box.HEAVY_HEAD)
    vcol = grid.columns.index(grid.verdict_column) if grid.verdict_column in grid.columns else -1
    for i in cols:
        name = grid.columns[i]
        if i in folded:
            table.add_column(Text(name), overflow="fold", min_width=len(name), max_width=folded[i])
        else:
            table.add_column(Text(name), justify="right" if name in grid.right else "left", no_wrap=True,
                             min_width=len(name))  # fmt: skip
    for row in grid.rows:
        table.add_row(*(Text(row[i], style=VERDICT_STYLES.get(row[i], "") if i == vcol else "") for i in cols))
    return table


def _width(widths: list[int], cols: list[int]) -> int:
    return sum(widths[i] for i in cols) + 1


def fit(grid: Grid, width: int) -> list[Table]:
    """The grid as one Rich table, or several with the figures split, none wider than `width`."""
    every = list(range(len(grid.columns)))
    if _width([_natural(grid, i) + BORDER for i in every], every) <= width:
        return [_table(grid, every, {})]
    grid = compact(grid)
    every = list(range(len(grid.columns)))
    text = [i for i, c in enumerate(grid.columns) if c not in grid.right]
    folded = {i: max(len(grid.columns[i]), min(FOLD_TO, _natural(grid, i))) for i in text}
    widths = [(folded[i] if i in folded else _natural(grid, i)) + BORDER for i in every]
    if _width(widths, every) <= width:
        return [_table(grid, every, folded)]
    grid = _numbered(grid)  # split: "#" (column 0) ties the parts' rows together
    widths = [1 + BORDER, *widths]
    text = [0, *(i + 1 for i in text)]
    folded = {i + 1: w for i, w in folded.items()}
    figures = [i for i in range(1, len(grid.columns)) if i not in text]
    parts: list[list[int]] = [list(text)]
    for i in figures:
        if _width(widths, [*parts[-1], i]) > width and any(j in figures for j in parts[-1]):
            parts.append([0])
        parts[-1].append(i)
    tables = []
    for n, part in enumerate(parts):
        t = _table(grid, part, folded)
        if n:
            t.title = Text(f"continued ({n + 1} of {len(parts)}; rows by #)", no_wrap=True, overflow="ignore")
        tables.append(t)
    return tables
