"""Compare results as text: the terminal table, Markdown and the lines under them."""

from __future__ import annotations

from bench.compare.model import Result
from bench.text import Grid, duration, markdown_cell, percent_interval, signed_percent


def grids(result: Result) -> list[Grid]:
    """The comparisons, the per-GPU verdicts and the environment, as tables."""
    conf = f"{100 * result.thresholds.confidence:g}% CI"
    rows = Grid(
        f"{result.candidate_label} against {result.baseline_label}",
        ["GPU", "workload", "config", "baseline", "candidate", "Δ time", conf, "verdict", "why"],
        right={"baseline", "candidate", "Δ time", conf},
        verdict_column="verdict",
    )
    for c in result.comparisons:
        rows.add(c.gpu, c.workload, c.config, duration(c.baseline_median_s), duration(c.candidate_median_s),
                 signed_percent(c.change), percent_interval(c.ci_low, c.ci_high), c.verdict, c.why)  # fmt: skip
    per_gpu = Grid(
        "per GPU",
        ["GPU", "device", "verdict", "compared", "Δ time (geomean)", "PASS", "WARN", "FAIL", "MISSING", "NEW"],
        right={"compared", "Δ time (geomean)", "PASS", "WARN", "FAIL", "MISSING", "NEW"},
        verdict_column="verdict",
    )
    for g in result.gpus:
        per_gpu.add(g.gpu, g.device_name, g.verdict, g.compared, signed_percent(g.geomean_change), *g.counts.values())
    env = Grid("environment", ["field", "baseline", "candidate", "differs"])
    for d in result.env:
        env.add(
            d.key,
            ", ".join(d.baseline) or "-",
            ", ".join(d.candidate) or "-",
            {"differs": "yes", "unknown": "unknown"}.get(d.state, ""),
        )
    return [rows, per_gpu, env]


def lines(result: Result) -> list[str]:
    """Warnings, the slowest GPU and the verdict, one line each."""
    out = [f"note: {n}" for n in result.notes]
    for d in result.env:
        if d.differs:
            out.append(f"warning: {d.key} differs: baseline {', '.join(d.baseline) or '-'}, "
                       f"candidate {', '.join(d.candidate) or '-'}")  # fmt: skip
    for s in result.slowest:
        out.append(f"slowest GPU on {s.node}: {s.gpu} ({s.device_name}), "
                   f"median time {signed_percent(s.geomean_change)} "
                   f"(geometric mean over {s.compared} configurations), {s.verdict}")  # fmt: skip
    th = result.thresholds
    out.append(
        f"Δ time: candidate median / baseline median - 1 (+ is slower), {100 * th.confidence:g}% bootstrap interval "
        f"over the kept samples; FAIL above {100 * th.fail:g}% beyond the noise, WARN above {100 * th.warn:g}%"
    )
    counts = {v: sum(c.verdict == v for c in result.comparisons) for v in ("PASS", "WARN", "FAIL", "MISSING", "NEW")}
    detail = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    n_gpus = len(result.gpus)
    out.append(f"verdict: {result.verdict} ({detail or 'nothing compared'}; {n_gpus} GPU{'s' * (n_gpus != 1)})")
    return out


def markdown(result: Result) -> str:
    """The tables and the lines under them, as Markdown."""
    body = "\n".join(g.markdown() for g in grids(result))
    return body + "\n" + "\n".join(f"- {markdown_cell(line)}" for line in lines(result)) + "\n"
