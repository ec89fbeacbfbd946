"""Compare results as text: the terminal tables (wide, or compact where the terminal is narrow), Markdown, and the
lines under them, the last of which is the headline: the verdict, what was compared and the counts."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table

from bench.compare.model import VERDICTS, Result
from bench.text import Grid, duration, markdown_cell, percent_interval, plural, signed_percent

WHY_MIN_WIDTH = 30  # the reasons fold at this width and above; narrower, they go under the table


def _config(workload: str, config: str) -> str:
    return f"{workload} {config}".strip()


def _short_names(gpus: list[str]) -> tuple[dict[str, str], str]:
    """GPU labels ("host cuda:0 GPU-1a2b3c4d") cut to what tells them apart, and what they share ("host: ")."""
    words = {g: g.split() for g in gpus}
    hosts = {w[0] for w in words.values()}
    if len(gpus) == 1:
        return {gpus[0]: gpus[0]}, f"{gpus[0]}: "
    if len(hosts) != 1 or any(len(w) < 2 for w in words.values()):
        return {g: g for g in gpus}, ""
    for cut in (slice(1, 2), slice(1, None)):  # the device alone, else the device and the UUID
        names = {g: " ".join(w[cut]) for g, w in words.items()}
        if len(set(names.values())) == len(gpus):
            return names, f"{hosts.pop()}: "
    return {g: g for g in gpus}, ""


def grids(result: Result, compact: bool = False) -> list[Grid]:
    """The comparisons, the per-GPU verdicts and the environment, as tables.

    Compact (for a narrow terminal): workload and configuration in one column, no GPU column
    when there is one GPU (the title names it), the reasons under the table (lines(compact=True))
    and the per-GPU counts in one column."""
    conf = f"{100 * result.thresholds.confidence:g}% CI"
    numbers = ["baseline", "candidate", "Δ time", conf]
    title = f"{result.candidate_label} against {result.baseline_label}"
    one_gpu = len(result.gpus) == 1
    short, where = _short_names([g.gpu for g in result.gpus])
    if compact:
        gpu_col = [] if one_gpu else ["GPU"]
        rows = Grid(where + title, [*gpu_col, "configuration", *numbers, "verdict"], right=set(numbers),
                    verdict_column="verdict")  # fmt: skip
    else:
        rows = Grid(title, ["GPU", "workload", "config", *numbers, "verdict", "why"], right=set(numbers),
                    verdict_column="verdict")  # fmt: skip
    for c in result.comparisons:
        figures = (duration(c.baseline_median_s), duration(c.candidate_median_s), signed_percent(c.change),
                   percent_interval(c.ci_low, c.ci_high), c.verdict)  # fmt: skip
        if compact:
            rows.add(*([] if one_gpu else [short[c.gpu]]), _config(c.workload, c.config), *figures)
        else:
            rows.add(c.gpu, c.workload, c.config, *figures, c.why)
    return [rows, _per_gpu(result, compact), _environment(result)]


def _per_gpu(result: Result, compact: bool) -> Grid:
    shown = [v for v in VERDICTS if v != "SKIP" or any(g.counts.get("SKIP") for g in result.gpus)]
    head = ["GPU", "device", "verdict", "compared", "Δ geomean" if compact else "Δ time (geomean)"]
    counts = ["counts"] if compact else shown
    grid = Grid("per GPU", [*head, *counts], right={"compared", head[-1], *shown}, verdict_column="verdict")
    for g in result.gpus:
        figures = (
            [", ".join(f"{g.counts[v]} {v}" for v in shown if g.counts.get(v)) or "-"]
            if compact
            else [g.counts.get(v, 0) for v in shown]
        )
        grid.add(g.gpu, g.device_name, g.verdict, g.compared, signed_percent(g.geomean_change), *figures)
    return grid


def _environment(result: Result) -> Grid:
    env = Grid("environment", ["field", "baseline", "candidate", "differs"])
    for d in result.env:
        env.add(
            d.key,
            ", ".join(d.baseline) or "-",
            ", ".join(d.candidate) or "-",
            {"differs": "yes", "unknown": "unknown"}.get(d.state, ""),
        )
    return env


def _keep_figures(grid: Grid, width: int) -> Table:
    """The grid for a narrow terminal: figures, verdicts and headers never fold; the text columns share what
    is left of `width`, each at least as wide as its longest word (up to 12) where that fits, and fold within it."""
    table = grid.rich()
    table.box = box.SIMPLE_HEAD
    table.pad_edge = False
    table.collapse_padding = True  # one space between columns, not two
    fixed = {i for i, name in enumerate(grid.columns) if name in grid.right or name == grid.verdict_column}
    natural = [max([len(name), *(len(row[i]) for row in grid.rows)]) for i, name in enumerate(grid.columns)]
    left = width - sum(natural[i] for i in fixed) - 2 * len(grid.columns) - 1  # a space each side, shared
    text = [i for i in range(len(grid.columns)) if i not in fixed]
    word = {i: min(natural[i], max([len(grid.columns[i]), *(min(12, len(w)) for r in grid.rows for w in r[i].split())]))
            for i in text}  # fmt: skip
    floor = word if sum(word.values()) <= left else {i: len(grid.columns[i]) for i in text}
    spare = max(0, left - sum(floor.values()))
    want = sum(natural[i] - floor[i] for i in text) or 1
    for i, (name, column) in enumerate(zip(grid.columns, table.columns, strict=True)):
        column.min_width = len(name)
        if i in fixed:
            column.no_wrap = True
        else:  # its floor and a share of the spare columns, in proportion to what it lacks
            column.max_width = min(natural[i], floor[i] + spare * (natural[i] - floor[i]) // want)
    return table


def tables(result: Result, width: int) -> tuple[list[Table], bool]:
    """The tables for a terminal `width` columns wide: the wide layout where its figures keep their natural width
    and the reasons get at least WHY_MIN_WIDTH columns, else the compact one (then True: the reasons go under the
    tables, lines(compact=True))."""
    wide = grids(result)
    rows, per_gpu = wide[0], wide[1]
    figures = Grid(rows.title, rows.columns[:-1], [r[:-1] for r in rows.rows], rows.right)
    natural = Console(width=100_000)  # a table's natural width, not capped by the terminal's
    if (natural.measure(figures.rich()).maximum + WHY_MIN_WIDTH + 3 <= width
            and natural.measure(per_gpu.rich()).maximum <= width):  # fmt: skip
        return [g.rich() for g in wide], False
    return [_keep_figures(g, width) for g in grids(result, compact=True)], True


def headline(result: Result) -> str:
    """One line: the verdict, what was compared, and how many configurations got each verdict."""
    counts = {v: sum(c.verdict == v for c in result.comparisons) for v in VERDICTS}
    detail = ", ".join(f"{n} {v}" for v, n in counts.items() if n) or "no configuration on either side"
    configs = len({(c.workload, c.config) for c in result.comparisons})
    what = f"{plural(configs, 'configuration')} on {plural(len(result.gpus), 'GPU')}"
    return f"verdict: {result.verdict}: {what}, {result.candidate_label} against {result.baseline_label}: {detail}"


def lines(result: Result, compact: bool = False) -> list[str]:
    """The reasons (compact layout only), warnings, the slowest GPU, how to read Δ, and the headline last."""
    several = len(result.gpus) > 1
    out = [f"{c.verdict}: {_config(c.workload, c.config)}{f' on {c.gpu}' if several else ''}: {c.why}"
           for c in result.comparisons if compact and c.why]  # fmt: skip
    out += [f"note: {n}" for n in result.notes]
    for d in result.env:
        if d.differs:
            out.append(f"warning: {d.key} differs: baseline {', '.join(d.baseline) or '-'}, "
                       f"candidate {', '.join(d.candidate) or '-'}")  # fmt: skip
    for s in result.slowest:
        out.append(f"slowest GPU on {s.node}: {s.gpu} ({s.device_name}), "
                   f"median time {signed_percent(s.geomean_change)} "
                   f"(geometric mean over {plural(s.compared, 'configuration')}), {s.verdict}")  # fmt: skip
    th = result.thresholds
    out.append(
        f"Δ time: candidate median / baseline median - 1 (+ is slower), {100 * th.confidence:g}% bootstrap interval "
        f"over the kept samples; FAIL above {100 * th.fail:g}% beyond the noise, WARN above {100 * th.warn:g}%"
    )
    out.append(headline(result))
    return out


def markdown(result: Result) -> str:
    """The tables and the lines under them, as Markdown."""
    body = "\n".join(g.markdown() for g in grids(result))
    return body + "\n" + "\n".join(f"- {markdown_cell(line)}" for line in lines(result)) + "\n"
