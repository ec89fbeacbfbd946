"""The node summary: each GPU against its siblings on the same node, under the same load.

For every configuration that ran on two or more GPUs of one node, each GPU's headline figure
(TFLOP/s, GB/s, tokens/s or busbw) is held against the node's median for it. A GPU more than
the threshold under that median is an outlier: slow, hot, throttled or badly seated, and worth
a look before the node takes jobs. A GPU whose record failed (a wrong answer, wrong collective
values, an ECC fault) is named too: speed never excuses a wrong result.

Work the ranks do together (collectives, data-parallel training) is left out of the comparison:
every rank of a collective finishes when the slowest has, so its own time says more about when
it arrived than about its GPU; the rank that waited longest would look slowest. Those are judged
by their data checks here and against a reference by `tokenbench compare`.

On a node of two GPUs the median is their mean: a slow GPU shows half its gap to the other.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from bench.results.identity import node_and_gpu
from bench.text import Grid, headline_figure, signed_percent

DEFAULT_OUTLIER_PCT = 5.0

# The figure each family is judged by (higher is better), in order of preference.
HEADLINE = {
    "collective": ("busbw_gb_per_s", "GB/s busbw"),
    "llm": ("output_tokens_per_s", "tokens/s"),
    "memory": ("gb_per_s", "GB/s"),
}


def headline(record: dict[str, Any]) -> tuple[float | None, str]:
    """The record's headline figure and its unit; None where it has none."""
    key, unit = HEADLINE.get(str(record.get("family")), ("tflops", "TFLOP/s"))
    value = record.get(key)
    if value is None and key == "output_tokens_per_s":
        value = record.get("tokens_per_s")
    if value is None and key == "tflops":
        value, unit = record.get("gb_per_s"), "GB/s"
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value), unit
    return None, unit


def joint(record: dict[str, Any]) -> bool:
    """True for work the ranks do together, whose per-rank time is not the GPU's own."""
    return record.get("family") == "collective" or record.get("param_parallel") not in (None, "none")


@dataclass(frozen=True)
class Finding:
    """A GPU named in the summary: an outlier on one configuration, or a failed record."""

    node: str
    gpu: str
    uuid: str | None
    workload: str
    label: str
    value: float | None
    median: float | None
    unit: str
    shortfall: float | None  # 1 - value / node median; None for a failure
    reason: str | None = None  # why the record failed

    def line(self) -> str:
        """The finding as one line: "OUTLIER: ..." or "FAILED: ..."."""
        where = f"{self.node} {self.gpu}" + (f" ({self.uuid})" if self.uuid else "")
        if self.reason is not None:
            return f"FAILED: {where}: {self.workload} {self.label}: {self.reason}"
        assert self.value is not None and self.median is not None and self.shortfall is not None
        return (f"OUTLIER: {where}: {self.workload} {self.label}: {headline_figure(self.value)} {self.unit}, "
                f"{100 * self.shortfall:.1f}% under the node median {headline_figure(self.median)}")  # fmt: skip


@dataclass
class GpuRow:
    """One GPU's row of the summary: configurations compared, its worst shortfall, outliers and failures."""

    node: str
    gpu: str
    uuid: str | None
    compared: int = 0
    worst: float | None = None  # the largest shortfall against the node median (negative: faster)
    worst_config: str = ""
    outliers: int = 0
    failed: int = 0


@dataclass
class NodeSummary:
    """Each GPU of each node against its siblings: one row per GPU, the outliers and the failed records."""

    threshold: float
    gpus: list[GpuRow] = field(default_factory=list)
    outliers: list[Finding] = field(default_factory=list)
    failures: list[Finding] = field(default_factory=list)

    def lines(self) -> list[str]:
        """What the summary found, one line each after a heading line; none when no node has two GPUs."""
        if not self.gpus:
            return []
        what = "GPUs" if all(g.gpu.startswith("GPU") for g in self.gpus) else "processes"
        head = (f"node summary: {len(self.gpus)} {what}, each against its node's median per configuration; "
                f"outlier: more than {100 * self.threshold:g}% under it")  # fmt: skip
        verdict = [f.line() for f in self.failures + self.outliers]
        return [head, *(verdict or ["no outlier and no failed record"])]

    def as_json(self) -> dict[str, Any]:
        """The summary as a run header's `node_summary`."""

        return {
            "outlier_threshold": self.threshold,
            "gpus": [dict(g.__dict__) for g in self.gpus],
            "outliers": [dict(f.__dict__) for f in self.outliers],
            "failures": [dict(f.__dict__) for f in self.failures],
        }


def summarize(records: list[dict[str, Any]], threshold: float = DEFAULT_OUTLIER_PCT / 100) -> NodeSummary:
    """Every GPU of every node with more than one GPU, against its siblings."""
    per_node: dict[str, set[str]] = defaultdict(set)
    for r in records:
        node, gpu = node_and_gpu(r)
        per_node[node].add(gpu)
    summary = NodeSummary(threshold)
    rows: dict[tuple[str, str], GpuRow] = {}
    for r in records:
        node, gpu = node_and_gpu(r)
        if len(per_node[node]) < 2:
            continue
        row = rows.setdefault((node, gpu), GpuRow(node, gpu, r.get("gpu_uuid")))
        if r.get("status") == "failed":
            row.failed += 1
            summary.failures.append(Finding(node, gpu, r.get("gpu_uuid"), str(r.get("workload")), str(r.get("label")),
                                            None, None, "", None, str(r.get("reason"))))  # fmt: skip
    groups: dict[tuple[str, str, str], list[tuple[str, float, str, dict[str, Any]]]] = defaultdict(list)
    for r in records:
        node, gpu = node_and_gpu(r)
        value, unit = headline(r)
        if r.get("status") == "ok" and value is not None and len(per_node[node]) >= 2 and not joint(r):
            groups[(node, str(r.get("workload")), str(r.get("label")))].append((gpu, value, unit, r))
    for (node, workload, label), members in groups.items():
        if len({m[0] for m in members}) < 2:
            continue
        median = statistics.median(m[1] for m in members)
        for gpu, value, unit, r in members:
            short = 1 - value / median
            row = rows[(node, gpu)]
            row.compared += 1
            if row.worst is None or short > row.worst:
                row.worst, row.worst_config = short, f"{workload} {label}"
            if short > threshold:
                row.outliers += 1
                summary.outliers.append(Finding(node, gpu, r.get("gpu_uuid"), workload, label, value, median, unit,
                                                short))  # fmt: skip
    summary.gpus = sorted(rows.values(), key=lambda g: (g.node, g.gpu))
    summary.outliers.sort(key=lambda f: -(f.shortfall or 0))
    return summary


def summary_grid(summary: NodeSummary) -> Grid:
    """The summary's per-GPU rows as a table."""
    what = "GPU" if all(g.gpu.startswith("GPU") for g in summary.gpus) else "process"
    columns = ["node", "GPU", "uuid", "configs", "worst vs median", "worst config", "outliers", "failed"]
    title = f"node summary: each {what} against its node's median (work done alone)"
    grid = Grid(title, columns, right={"configs", "worst vs median", "outliers", "failed"})
    for g in summary.gpus:
        worst = signed_percent(None if g.worst is None else -g.worst)  # shown as a change: - is slower
        grid.add(g.node, g.gpu, g.uuid or "-", g.compared, worst, g.worst_config or "-", g.outliers, g.failed)
    return grid
