"""`tokenbench accept`: the acceptance suite on every GPU of the node, then PASS or FAIL per GPU and node.

It measures exactly as `tokenbench run` does (one process per GPU, records on disk as they finish),
adds a soak where the profile asks for one, then judges the records by the rules in bench/accept
against thresholds from bench/accept/thresholds.toml (or `--thresholds`). Exit 0 on PASS, 1 on FAIL,
2 on bad input.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bench.cli.console import err, fail, line, out
from bench.device.telemetry import DEFAULT_INTERVAL_S, DEFAULT_MIN_WINDOW_S

if TYPE_CHECKING:
    from bench.accept.verdict import NodeVerdict
    from bench.device.base import Device
    from bench.measure.suites import Entry


@dataclass(frozen=True)
class Profile:
    """What a profile runs: a suite per device kind, and a soak (seconds; 0: none)."""

    gpu_suite: str
    cpu_suite: str
    gpu_soak_s: float
    cpu_soak_s: float
    about: str


PROFILES = {
    "quick": Profile("accept-quick", "accept-cpu", 0, 0, "every reboot: a few minutes a node, no soak"),
    "full": Profile("node", "accept-cpu", 300, 3, "the node suite and a 5-minute soak: under 30 minutes a node"),
}
SOAK_INTERVAL_S = {"cuda": 10.0, "cpu": 1.0}


def accept(
    profile: Annotated[str, typer.Option(help="quick (every reboot) or full (node suite and a soak)")] = "quick",
    thresholds: Annotated[
        Path | None, typer.Option(help="your thresholds TOML: the keys given replace the packaged ones")
    ] = None,
    soak_s: Annotated[
        float | None, typer.Option(min=0, help="soak seconds (0: none); default: the profile's (full: 300 on a GPU)")
    ] = None,
    soak_interval_s: Annotated[
        float | None,
        typer.Option(min=0.1, max=3600, help="soak report interval; default 10 s on a GPU, 1 s on the CPU"),
    ] = None,
    suite: Annotated[str | None, typer.Option(help="replace the profile's suite (a name or a .toml path)")] = None,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="directory for the run's records and header")] = Path(
        "results"
    ),
    device: Annotated[str | None, typer.Option(help="cpu, cuda or cuda:N; default: every usable GPU")] = None,
    nproc: Annotated[int | None, typer.Option(min=1, help="processes, one per GPU; default: every visible GPU")] = None,
    reference_dir: Annotated[
        Path | None, typer.Option(help="reference results by GPU model (default: results/reference of tokenbench)")
    ] = None,
    idle_s: Annotated[float, typer.Option(min=0, help="seconds of idle-power baseline first")] = 5.0,
    seed: Annotated[int | None, typer.Option(help="seed for inputs; default: a fresh random one")] = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar on stderr")] = True,
    dist_timeout_s: Annotated[float, typer.Option(min=1, help="how long a rank waits for the others")] = 600.0,
) -> None:
    """Accept or reject this node: the acceptance suite on every GPU, then PASS or FAIL per GPU and per node."""
    from bench.accept.rules import ThresholdsError, load_thresholds
    from bench.cli import run as runcmd

    if profile not in PROFILES:
        fail(f"--profile: unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    try:
        th = load_thresholds(thresholds)
    except ThresholdsError as e:
        fail(str(e))
    chosen = PROFILES[profile]
    how = runcmd.Measuring(out_dir, device, seed, progress, idle_s, DEFAULT_INTERVAL_S * 1000, DEFAULT_MIN_WINDOW_S,
                           False, nproc, dist_timeout_s, command="accept")  # fmt: skip

    def choose(dev: Device) -> tuple[str, list[Entry]]:
        return _entries(chosen, suite, dev, soak_s, soak_interval_s)

    session, files, outcome, suite_name = runcmd.measure(how, choose, [])
    from bench.accept.verdict import judge

    verdicts = judge(outcome.records, th, _reference(outcome.records, reference_dir))
    acceptance = {"profile": profile, "thresholds": str(thresholds) if thresholds else "packaged",
                  "verdict": _overall(verdicts), "nodes": [v.as_json() for v in verdicts]}  # fmt: skip
    runcmd.complete_or_exit(files, outcome, acceptance=acceptance)
    _print(verdicts, suite_name, profile, files.writer.records_path, th)
    runcmd.leave(session, 0 if acceptance["verdict"] == "PASS" else 1)


def _entries(
    profile: Profile, suite: str | None, dev: Device, soak_s: float | None, interval_s: float | None
) -> tuple[str, list[Entry]]:
    """The profile's suite for this device, then the soak's intervals."""
    from bench.cli.run import _entries as suite_entries
    from bench.measure import soak

    gpu = dev.kind == "cuda"
    name, entries = suite_entries(suite or (profile.gpu_suite if gpu else profile.cpu_suite), [], dev)
    seconds = soak_s if soak_s is not None else profile.gpu_soak_s if gpu else profile.cpu_soak_s
    if seconds > 0:
        try:
            entries = [*entries, *soak.entries(dev.kind, seconds, interval_s or SOAK_INTERVAL_S[dev.kind])]
        except ValueError as e:
            fail(f"--soak-s: {e}")
    return name, entries


def _reference(records: list[dict[str, Any]], reference_dir: Path | None) -> list[dict[str, Any]]:
    """The reference records for the one GPU model these records ran on; none where there is none."""
    from bench.catalog.gpus import catalog_spec
    from bench.compare import reference as ref
    from bench.results.reader import ResultsError, load_records

    models = {spec.id for r in records if (spec := catalog_spec(str(r.get("device_name")))[0]) is not None}
    if len(models) != 1:
        return []  # a CPU, an unknown card, or a mixed node: the reference rule says N/A
    try:
        folder, _ = ref.find(reference_dir or ref.DEFAULT_DIR, models.pop())
        return load_records(folder)
    except (ref.ReferenceError, ResultsError):
        return []


def _overall(verdicts: list[NodeVerdict]) -> str:
    return "PASS" if verdicts and all(v.verdict == "PASS" for v in verdicts) else "FAIL"


def _print(verdicts: list[NodeVerdict], suite: str, profile: str, records_path: Path, th: Any) -> None:
    """The verdict table (a row per GPU), the rules with their sources, then one line per node."""
    from bench.text import Grid, plural

    grid = Grid(f"tokenbench accept ({profile}: {suite})", ["node", "GPU", "rule", "result", "detail"],
                verdict_column="result")  # fmt: skip
    for nv in verdicts:
        for g in nv.gpus:
            for f in g.findings:
                grid.add(nv.node, g.gpu, f.rule, f.verdict, f.detail)
            grid.add(
                nv.node, g.gpu, "verdict", g.verdict, plural(len(g.reasons), "reason") if g.verdict == "FAIL" else ""
            )
        for f in nv.findings:
            grid.add(nv.node, "(node)", f.rule, f.verdict, f.detail)
    out.print(grid.rich())
    for rule in ("gemm", "bandwidth", "reference", "outlier", "collective", "health", "soak"):
        line(f"rule {rule}: {getattr(th, rule).source}")
    for nv in verdicts:
        line(nv.line())
    err.print(f"tokenbench: records and verdicts in {records_path} and its header", markup=False, soft_wrap=True)
