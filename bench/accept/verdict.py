"""One verdict per GPU and per node, PASS or FAIL, each with its reasons, from the rules' findings.

A GPU fails when any rule fails for it; a node fails when any of its GPUs fails or a rule about
the whole node (collective bandwidth) fails. N/A findings are listed with their reason and never
decide a verdict. Reads records only.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from bench.accept import rules
from bench.accept.rules import NODE, Finding, Thresholds
from bench.accept.soak import SoakSeries, soak_series
from bench.catalog.gpus import catalog_spec
from bench.compare.node import summarize
from bench.results.identity import node_and_gpu
from bench.text import number, plural


def outlier_findings(records: list[dict[str, Any]], th: rules.OutlierRule) -> dict[tuple[str, str], Finding]:
    """A FAIL for each GPU more than the threshold under its node's median (nodes of 2+ GPUs)."""
    summary = summarize([r for r in records if r.get("phase") != "soak"], th.max_pct_below_median / 100)
    found: dict[tuple[str, str], Finding] = {}
    for o in summary.outliers:
        key = (o.node, o.gpu)
        line = o.line()
        found[key] = Finding(o.node, o.gpu, "outlier", "FAIL", line)
    within = f"within {th.max_pct_below_median:g}% of the node's median"
    for g in summary.gpus:
        found.setdefault((g.node, g.gpu), Finding(g.node, g.gpu, "outlier", "PASS", within))
    return found


def collective_finding(node: str, records: list[dict[str, Any]], th: rules.CollectiveRule) -> Finding:
    """All-reduce bus bandwidth at large sizes against the fabric's per-direction figure."""
    rows = [r for r in records if r.get("status") == "ok" and r.get("workload") == "all_reduce"
            and (r.get("bytes") or 0) >= th.min_size_bytes and r.get("busbw_gb_per_s") is not None]  # fmt: skip
    if not rows:
        why = "no all-reduce at or above the judged size in this run (one process, or a suite without it)"
        return Finding(node, NODE, "collective", "N/A", why)
    spec, reason = catalog_spec(str(rows[0].get("device_name")))
    fabric = th.fabric_gb_per_s.get(spec.id) if spec else None
    if fabric is None:
        why = reason or f"no fabric figure for {spec.id if spec else '?'} in the thresholds"
        return Finding(node, NODE, "collective", "N/A", why)
    worst = min(rows, key=lambda r: r["busbw_gb_per_s"])
    frac = worst["busbw_gb_per_s"] / fabric
    text = (f"all_reduce {worst.get('label')}: busbw {number(worst['busbw_gb_per_s'])} GB/s = {100 * frac:.1f}% of "
            f"{fabric:g} GB/s (needs {100 * th.min_frac_fabric:.0f}%)")  # fmt: skip
    return Finding(node, NODE, "collective", "FAIL" if frac < th.min_frac_fabric else "PASS", text)


def soak_finding(s: SoakSeries, th: rules.SoakRule) -> Finding:
    """The soak's steady state against its first interval, and its drift."""
    ratio, drift = s.steady_over_first, s.drift()
    if ratio is None:
        return Finding(s.node, s.gpu, "soak", "FAIL", "no soak interval was measured")
    text = f"steady/first {ratio:.3f}"
    if drift is not None:
        interval = f" [{drift.low:+.2f}, {drift.high:+.2f}]" if drift.low is not None else ""
        text += f", drift {drift.pct_per_min:+.2f}%/min{interval}"
    if s.device_kind != "cuda":  # a shared host's other load, not a card's heat, sets a CPU's throughput
        return Finding(s.node, s.gpu, "soak", "N/A", f"{text}; reported, not judged: the soak judges GPUs")
    if ratio < th.min_steady_over_first:
        return Finding(s.node, s.gpu, "soak", "FAIL", f"{text}: under {th.min_steady_over_first:g} when warm")
    if drift is not None and drift.high is not None and drift.high < -th.max_decay_pct_per_min:
        return Finding(s.node, s.gpu, "soak", "FAIL", f"{text}: decays faster than {th.max_decay_pct_per_min:g}%/min")
    return Finding(s.node, s.gpu, "soak", "PASS", text)


@dataclass
class GpuVerdict:
    node: str
    gpu: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return "FAIL" if any(f.verdict == "FAIL" for f in self.findings) else "PASS"

    @property
    def reasons(self) -> list[str]:
        """Why it failed (FAIL findings), or what was not judged (N/A) when it passed."""
        wanted = "FAIL" if self.verdict == "FAIL" else "N/A"
        return [f"{f.rule}: {f.detail}" for f in self.findings if f.verdict == wanted]


@dataclass
class NodeVerdict:
    node: str
    gpus: list[GpuVerdict]
    findings: list[Finding]  # about the whole node

    @property
    def verdict(self) -> str:
        failed = any(g.verdict == "FAIL" for g in self.gpus) or any(f.verdict == "FAIL" for f in self.findings)
        return "FAIL" if failed or not self.gpus else "PASS"

    def line(self) -> str:
        """One line, as MLPerf prints "Result is: VALID": the node, its verdict and the count."""
        bad = [g.gpu for g in self.gpus if g.verdict == "FAIL"]
        head = f"node {self.node}: {self.verdict} ({len(self.gpus) - len(bad)} of {plural(len(self.gpus), 'GPU')} pass"
        node_fail = [f"{f.rule}: {f.detail}" for f in self.findings if f.verdict == "FAIL"]
        tail = f"; failing: {', '.join(bad)}" if bad else ""
        return head + tail + (f"; node: {'; '.join(node_fail)}" if node_fail else "") + ")"

    def as_json(self) -> dict[str, Any]:
        return {"node": self.node, "verdict": self.verdict,
                "node_findings": [f.__dict__ for f in self.findings],
                "gpus": [{"gpu": g.gpu, "verdict": g.verdict, "findings": [f.__dict__ for f in g.findings]}
                         for g in self.gpus]}  # fmt: skip


def judge(
    records: list[dict[str, Any]], th: Thresholds, reference: list[dict[str, Any]] | None = None
) -> list[NodeVerdict]:
    """Every rule over every GPU of every node in `records`; `reference`: the model's reference records."""
    per_gpu: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        per_gpu[node_and_gpu(r)].append(r)
    outliers = outlier_findings(records, th.outlier)
    soaks = {(s.node, s.gpu): s for s in soak_series(records)}
    nodes: dict[str, NodeVerdict] = {}
    for (node, gpu), rows in sorted(per_gpu.items()):
        findings = [rules.check_rule(node, gpu, rows), rules.health_rule(node, gpu, rows, th.health),
                    rules.gemm_rule(node, gpu, rows, th.gemm), rules.bandwidth_rule(node, gpu, rows, th.bandwidth),
                    rules.reference_rule(node, gpu, rows, reference or [], th.reference)]  # fmt: skip
        findings.append(outliers.get((node, gpu)) or Finding(node, gpu, "outlier", "N/A", "the only GPU of its node"))
        if (node, gpu) in soaks:
            findings.append(soak_finding(soaks[(node, gpu)], th.soak))
        nv = nodes.setdefault(node, NodeVerdict(node, [], []))
        nv.gpus.append(GpuVerdict(node, gpu, findings))
    for node, nv in nodes.items():
        nv.findings.append(collective_finding(node, [r for r in records if node_and_gpu(r)[0] == node], th.collective))
    return list(nodes.values())
