"""Baseline against candidate: per workload and per GPU, the change in median time with an interval.

For each candidate GPU and each workload configuration (workload id and its parameters):

- change = candidate median time / baseline median time - 1 (positive: slower), over the kept
  samples of every matching ok record of the same workload version on each side (the baseline's
  records are pooled, so a reference node's GPUs together form one baseline), with a percentile
  bootstrap interval that resamples records and then samples within them;
- FAIL when the interval's lower end is above the fail threshold (slower by more than it, beyond
  the noise), when the candidate's record failed (a wrong answer or a crash), or when it is
  missing or measured by another workload version (unless missing counts as a warning);
- WARN when it is slower and the interval excludes no change but the lower end is not above
  the fail threshold (and the change is above the warn threshold), when either side's CV was
  above its threshold (a noisy median), or when a side has too few samples to judge;
- PASS otherwise, faster included, and where both sides hold identical samples. NEW marks a
  configuration the baseline has no ok record of;
- at most WARN (WARN, whatever the change) where a record of either side was measured on a busy
  host (`contended`);
- SKIP (counts as WARN) when the baseline measured it only on another device model (device_name:
  a GPU or CPU model) than the candidate's, or on the CPU with another torch thread count;
  `allow_different_devices` compares them, and says so.

bench.compare.rules states these rules and the reasons they give.

The interval comes from bench.compare.bootstrap: the same distribution as resampling the samples
and taking the median, drawn in O(log n) per resample.

Each GPU's verdict is its worst, and FAIL when nothing at all was compared on it while other GPUs
were; where nothing was compared anywhere, every verdict is "nothing compared" (exit 2). On each node
with several GPUs, the slowest is the one with the highest geometric mean of candidate /
baseline median time over the configurations compared.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from bench.compare import node, rules
from bench.compare import notes as notes_of
from bench.compare.bootstrap import bootstrap_medians, median_change
from bench.compare.env import EnvDiff, env_diffs
from bench.measure.stats import BASELINE_SEED, CANDIDATE_SEED
from bench.results.identity import physical_gpu
from bench.results.reader import Run
from bench.text import plural

SEVERITY = ("PASS", "WARN", "FAIL")  # MISSING counts as FAIL (or WARN), NEW as PASS, SKIP as WARN
VERDICTS = ("PASS", "WARN", "FAIL", "MISSING", "NEW", "SKIP")
NOT_MEASURED = ("NEW", "MISSING", "SKIP")  # verdicts of a configuration not measured on both sides
NOTHING = "nothing compared"  # the verdict, and each GPU's, when no configuration was compared at all


@dataclass(frozen=True)
class Thresholds:
    """What a slowdown must exceed to WARN or FAIL, the interval's confidence, and what a missing configuration is."""

    fail: float = 0.05  # FAIL when slower by more than this beyond the noise
    warn: float = 0.02  # WARN when significantly slower by more than this
    confidence: float = 0.95
    missing_fails: bool = True  # a configuration the candidate lacks: FAIL (else WARN)
    allow_different_devices: bool = False  # compare records of different device models (else SKIP them)


@dataclass
class Comparison:
    """One workload configuration on one candidate GPU against the pooled baseline."""

    gpu: str
    workload: str
    config: str
    verdict: str  # PASS | WARN | FAIL | MISSING | NEW | SKIP
    severity: str  # PASS | WARN | FAIL: what the verdict counts as
    why: str
    change: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    baseline_median_s: float | None = None
    candidate_median_s: float | None = None
    baseline_n: int = 0
    candidate_n: int = 0
    baseline_records: int = 0
    joint: bool = False  # work the ranks do together: its time is the job's, not this GPU's
    devices_differ: bool = False  # the device models differ: SKIP, or compared with allow_different_devices
    threads_differ: bool = False  # the CPU's torch threads differ: SKIP, or compared with allow_different_devices
    contended: list[str] = field(default_factory=list)  # the sides with a record measured on a busy host
    noisy: list[str] = field(default_factory=list)  # the sides with a record whose CV was above its threshold


@dataclass
class GpuVerdict:
    """One candidate GPU: its worst verdict, the configurations compared and its geometric-mean change."""

    gpu: str
    node: str
    device_name: str
    verdict: str
    compared: int
    geomean_change: float | None  # geometric mean of time ratios - 1
    counts: dict[str, int]


@dataclass
class Result:
    """A whole comparison: every configuration on every GPU, the per-GPU verdicts, the environment and notes."""

    thresholds: Thresholds
    comparisons: list[Comparison]
    gpus: list[GpuVerdict]
    env: list[EnvDiff]
    verdict: str
    slowest: list[GpuVerdict]  # per node with several GPUs, where the slowest is slower than the baseline
    baseline_label: str
    candidate_label: str
    notes: list[str] = field(default_factory=list)

    @property
    def compared(self) -> int:
        """Configurations whose change was measured on both sides (not NEW, MISSING or SKIP, nor without samples)."""
        return sum(c.change is not None for c in self.comparisons)

    @property
    def exit_code(self) -> int:
        """0 on PASS or WARN, 1 on FAIL: what CI gates on; 2 when no configuration was measured on both sides."""
        if not self.compared:
            return 2
        return 1 if self.verdict == "FAIL" else 0

    def nothing_compared(self) -> str:
        """Why no configuration was compared, in one line ("" when some were)."""
        if self.compared:
            return ""
        skipped = [c for c in self.comparisons if c.verdict == "SKIP"]
        if skipped:
            return f"nothing compared: {skipped[0].why} ({plural(len(skipped), 'configuration')})"
        unmeasured = [c for c in self.comparisons if c.verdict not in NOT_MEASURED]
        if unmeasured:  # on both sides, but with nothing to measure the change from
            return f"nothing compared: {unmeasured[0].why} ({plural(len(unmeasured), 'configuration')})"
        return (f"nothing compared: no configuration was measured in both the {self.baseline_label} and the "
                f"{self.candidate_label} ({plural(len(self.comparisons), 'configuration')} on one side only or of "
                "another workload version)")  # fmt: skip

    def as_json(self) -> dict[str, Any]:
        """The result as plain JSON values (`tokenbench compare --format json`)."""
        data = {**asdict(self), "compared": self.compared, "exit_code": self.exit_code}
        return json.loads(json.dumps(data, default=str))


def _param(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def config_key(record: dict[str, Any]) -> tuple[str, str]:
    """What must match to compare two records: the workload id and every parameter (not the version).

    32 and 32.0 are the same parameter, and a null parameter is the same as an absent one. Work the
    ranks do together (a collective, data-parallel training) also needs the same number of ranks."""
    params = {k: _param(v) for k, v in record.items() if k.startswith("param_") and v is not None}
    if node.joint(record):
        params["ranks"] = record.get("world_size")
    if record.get("soak_interval") is not None:  # a soak's intervals are measurements of their own
        params["soak_interval"] = record["soak_interval"]
    return str(record["workload"]), json.dumps(params, sort_keys=True)


def _device_class(r: dict[str, Any]) -> str:
    """cuda, cpu, or host: a plain pytest-benchmark function timed on the host."""
    return "host" if r.get("family") == "pytest-benchmark" else str(r.get("device_kind") or r.get("device") or "?")


def _usable(r: dict[str, Any]) -> bool:
    return r["status"] == "ok" and bool(r.get("samples_s"))


def _groups(records: list[dict[str, Any]]) -> list[np.ndarray]:
    return [np.asarray(r["samples_s"], dtype=np.float64) for r in records]


def _worst(verdicts: list[str]) -> str:
    return max(verdicts, key=SEVERITY.index) if verdicts else "PASS"


class Baseline:
    """The baseline's records by configuration, with each pooled bootstrap drawn once for every GPU."""

    def __init__(self, records: list[dict[str, Any]], n_resamples: int = 2000):
        self.by_key: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for r in records:
            self.by_key[config_key(r)].append(r)
        self.n_resamples = n_resamples
        self._pooled: dict[tuple[tuple[str, str], Any, tuple[str, ...]], tuple[float, int, np.ndarray]] = {}

    def pooled(
        self, key: tuple[str, str], version: Any, records: list[dict[str, Any]]
    ) -> tuple[float, int, np.ndarray]:
        """The median and count of a configuration's pooled samples (one workload version and set of devices), and
        their bootstrap medians: worked out once for every GPU."""
        devices = tuple(sorted({str(r.get("device_name")) for r in records}))
        if (key, version, devices) not in self._pooled:
            groups = _groups(records)
            samples = np.concatenate(groups)
            boot = bootstrap_medians(groups, self.n_resamples, BASELINE_SEED)
            self._pooled[key, version, devices] = (float(np.median(samples)), int(samples.size), boot)
        return self._pooled[key, version, devices]


def compare_one(
    gpu: str, key: tuple[str, str], baseline: Baseline, cand: list[dict[str, Any]], th: Thresholds
) -> Comparison | None:
    """The verdict of one configuration on one GPU; None where neither side has anything to say."""
    base = baseline.by_key.get(key, [])
    sample = (cand or base)[0]
    head = {"gpu": gpu, "workload": sample["workload"], "config": str(sample.get("label") or ""),
            "joint": node.joint(sample)}  # fmt: skip
    missing = "FAIL" if th.missing_fails else "WARN"
    base_ok, cand_ok = [r for r in base if _usable(r)], [r for r in cand if _usable(r)]
    failed = [r for r in cand if r["status"] == "failed"]
    if failed:
        why = f"candidate failed: {failed[0].get('reason') or 'no reason recorded'}"
        why += f" ({plural(len(cand_ok), 'other record')} of it ok)" if cand_ok else ""
        return Comparison(**head, verdict="FAIL", severity="FAIL", why=why)
    base_ran, cand_ran = [r for r in base if r["status"] == "ok"], [r for r in cand if r["status"] == "ok"]
    if base_ran and cand_ran and not (base_ok and cand_ok):  # measured on both sides, samples not kept
        why = (
            "no samples to compare (a serve record keeps its requests' E2EL in samples_s; a vLLM result imported "
            "without its `latencies` list has none)"
            if sample.get("family") == "serve"
            else "no samples to compare (pytest-benchmark keeps each round's time only with --benchmark-save-data)"
        )
        return Comparison(**head, verdict="WARN", severity="WARN", why=why)
    if not base_ok:
        if not cand_ok:
            return None
        other = next((r for r in base if r.get("reason")), None)
        why = (
            f"the baseline has no ok record ({other['status']}: {other['reason']})" if other else "not in the baseline"
        )
        return Comparison(**head, verdict="NEW", severity="PASS", why=why)
    if not cand_ok:
        skipped = [r for r in cand if r["status"] == "skipped"]
        why = f"skipped: {skipped[0].get('reason')}" if skipped else "no record in the candidate"
        return Comparison(**head, verdict="MISSING", severity=missing, why=why)
    version = max({r.get("workload_version") or 0 for r in cand_ok})
    cand_ok = [r for r in cand_ok if (r.get("workload_version") or 0) == version]
    same = [r for r in base_ok if (r.get("workload_version") or 0) == version]
    if not same:
        have = ", ".join(sorted({str(r.get("workload_version")) for r in base_ok}))
        why = f"baseline measured workload version {have}, candidate {version}: not comparable, measure a new baseline"
        return Comparison(**head, verdict="MISSING", severity=missing, why=why)
    match = rules.like_for_like(same, cand_ok, _device_class(cand_ok[0]) == "cpu", th.allow_different_devices)
    if match.skip is not None:
        kind = match.skip_kind
        return Comparison(**head, verdict="SKIP", severity="WARN", why=match.skip, devices_differ=kind == "devices",
                          threads_differ=kind == "threads")  # fmt: skip
    item = _measured(head, baseline, key, version, match.same, cand_ok, th)
    item.devices_differ, item.threads_differ = "devices" in match.differs, "threads" in match.differs
    item.why = "; ".join(x for x in (*match.differs.values(), item.why) if x)
    return item


def _measured(
    head: dict[str, Any], baseline: Baseline, key: tuple[str, str], version: Any, same: list[dict[str, Any]],
    cand_ok: list[dict[str, Any]], th: Thresholds,
) -> Comparison:  # fmt: skip
    """The change in median time over both sides' samples (one workload version), its interval and verdict."""
    b_median, b_n, b_boot = baseline.pooled(key, version, same)
    c_groups = _groups(cand_ok)
    c = np.concatenate(c_groups)
    c_median = float(np.median(c))
    if min(b_median, c_median) <= 0:
        return Comparison(**head, verdict="WARN", severity="WARN", why="a median time is not positive: not compared")
    cand_boot = bootstrap_medians(c_groups, baseline.n_resamples, CANDIDATE_SEED)
    ci = median_change(b_median, c_median, b_boot, cand_boot, th.confidence)
    maybe_same = b_n == c.size and b_median == c_median  # only then can the samples be the same
    b_sorted = np.sort(np.concatenate(_groups(same))) if maybe_same else np.empty(0)
    f = rules.flags(same, cand_ok, b_sorted, np.sort(c) if maybe_same else np.empty(1))
    found, why = rules.verdict(ci.change, ci.low, f, th.fail, th.warn)
    return Comparison(
        **head, verdict=found, severity=found, why=why, change=ci.change, ci_low=ci.low, ci_high=ci.high,
        baseline_median_s=b_median, candidate_median_s=c_median, baseline_n=b_n,
        candidate_n=c.size, baseline_records=len(same), contended=sorted(f.busy), noisy=list(f.noisy),
    )  # fmt: skip


def gpu_verdicts(comparisons: list[Comparison], names: dict[str, tuple[str, str]]) -> list[GpuVerdict]:
    """Each GPU's worst verdict (FAIL when nothing was compared on it, "nothing compared" when nothing was compared
    on any GPU) and the geometric mean of its own changes."""
    by_gpu: dict[str, list[Comparison]] = defaultdict(list)
    for c in comparisons:
        by_gpu[c.gpu].append(c)
    out = []
    for gpu, items in by_gpu.items():
        ratios = [1 + c.change for c in items if c.change is not None]
        own = [1 + c.change for c in items if c.change is not None and not c.joint]  # this GPU's own speed
        geo = math.exp(sum(map(math.log, own)) / len(own)) - 1 if own else None
        counts = {v: sum(c.verdict == v for c in items) for v in VERDICTS}
        verdict = _worst([c.severity for c in items]) if ratios else "FAIL"  # nothing compared is no pass
        node, device = names.get(gpu, ("?", "?"))
        out.append(GpuVerdict(gpu, node, device, verdict, len(ratios), geo, counts))
    if not any(g.compared for g in out):  # no gate to pass or fail: exit 2, and every verdict says why
        for g in out:
            g.verdict = NOTHING
    return sorted(out, key=lambda g: g.gpu)


def slowest_per_node(per_gpu: list[GpuVerdict]) -> list[GpuVerdict]:
    """On each node with several compared GPUs, the slowest, where it is slower than the baseline."""
    by_node: dict[str, list[GpuVerdict]] = defaultdict(list)
    for g in per_gpu:
        if g.geomean_change is not None:
            by_node[g.node].append(g)
    picks = [max(gs, key=lambda g: g.geomean_change or 0.0) for gs in by_node.values() if len(gs) > 1]
    return [g for g in picks if (g.geomean_change or 0.0) > 0]


def compare(
    base_runs: list[Run],
    cand_runs: list[Run],
    th: Thresholds | None = None,
    baseline_label: str = "baseline",
    candidate_label: str = "candidate",
    n_resamples: int = 2000,
) -> Result:
    """Every configuration on every candidate GPU against the baseline, per-GPU verdicts and the environment."""
    th = th or Thresholds()
    notes = []
    cand_paths = {run.path.resolve() for run in cand_runs}
    overlap = [run for run in base_runs if run.path.resolve() in cand_paths]
    if overlap:
        notes.append(f"{plural(len(overlap), 'run')} given as both baseline and candidate: kept in the candidate only")
        base_runs = [run for run in base_runs if run not in overlap]
    base_records = notes_of.records(base_runs)
    baseline = Baseline(base_records, n_resamples)
    notes += notes_of.run_notes(base_runs, cand_runs, base_records)
    cand_by_gpu: dict[str, dict[tuple[str, str], list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    names: dict[str, tuple[str, str]] = {}
    for r in notes_of.records(cand_runs):
        cand_by_gpu[physical_gpu(r)][config_key(r)].append(r)
        names[physical_gpu(r)] = (str(r.get("hostname") or "?"), str(r.get("device_name") or "?"))
    comparisons = []
    for gpu, by_key in sorted(cand_by_gpu.items()):
        # a GPU is held to the baseline's configurations of its own kind of device: a GPU is not
        # missing the host-only benchmarks of a pytest-benchmark file, nor a CPU the GPU's
        kind = _device_class(next(r for rs in by_key.values() for r in rs))
        expected = {k for k, rs in baseline.by_key.items() if any(_device_class(r) == kind for r in rs)}
        for key in sorted(expected | set(by_key)):
            item = compare_one(gpu, key, baseline, by_key.get(key, []), th)
            if item is not None:
                comparisons.append(item)
    per_gpu = gpu_verdicts(comparisons, names)
    for g in per_gpu:
        if not g.compared:
            notes.append(f"{g.gpu}: nothing compared (no configuration measured on both sides)"
                         + (": FAIL, since other GPUs were compared" if g.verdict == "FAIL" else ""))  # fmt: skip
    notes += notes_of.device_notes(comparisons) + notes_of.busy_notes(comparisons)
    if not baseline.by_key:
        notes.append("the baseline holds no records")
    if not comparisons:
        notes.append("nothing to compare: no configuration is in both")
    compared = any(c.change is not None for c in comparisons)
    verdict = _worst([g.verdict for g in per_gpu]) if compared else NOTHING
    env = env_diffs(base_runs, cand_runs)
    return Result(th, comparisons, per_gpu, env, verdict, slowest_per_node(per_gpu), baseline_label, candidate_label,
                  notes)  # fmt: skip
