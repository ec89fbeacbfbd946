"""The notes under compare's tables that concern more than one row: configurations left out or compared anyway for
their devices or CPU threads, a busy host, the runs themselves; and each record's torch threads."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bench.text import plural

if TYPE_CHECKING:
    from bench.compare.model import Comparison
    from bench.results.reader import Run


DIFFERS = (  # Comparison flag, how the SKIP note says it, what was compared across, whose the difference may be
    ("devices_differ", "on different device models", "device models", "device's"),
    ("threads_differ", "with different torch thread counts on the CPU", "torch thread counts on the CPU", "threads'"),
)


def device_notes(comparisons: list[Comparison]) -> list[str]:
    """What was left out, or compared anyway, for being measured on different device models or CPU thread counts."""
    notes = []
    for attr, measured, across, whose in DIFFERS:
        skipped = [c for c in comparisons if c.verdict == "SKIP" and getattr(c, attr)]
        if skipped:
            notes.append(f"{plural(len(skipped), 'configuration')} not compared: measured {measured} "
                         "(--allow-different-devices compares them)")  # fmt: skip
        differ = [c for c in comparisons if c.verdict != "SKIP" and getattr(c, attr)]
        if differ:
            notes.append(f"{plural(len(differ), 'configuration')} compared across {across} "
                         f"(--allow-different-devices): a difference in speed may be the {whose}")  # fmt: skip
    return notes


def busy_notes(comparisons: list[Comparison]) -> list[str]:
    """How many configurations had a record measured on a busy host, and on which side."""
    busy = [c for c in comparisons if c.contended]
    if not busy:
        return []
    counts = {side: sum(side in c.contended for c in busy) for side in ("baseline", "candidate")}
    sides = ", ".join(f"{side} {n}" for side, n in counts.items() if n)
    return [f"{plural(len(busy), 'configuration')} measured on a busy host (contended records: {sides}): at most "
            "WARN, since other processes slowed the timed calls and neither the CV nor the interval sees it; measure "
            "again on a quiet host"]  # fmt: skip


def records(runs: list[Run]) -> list[dict[str, Any]]:
    """The runs' records, each with its torch threads: the record's own, else its run header's (older runs)."""
    out = []
    for run in runs:
        header = run.header or {}
        found = (header.get("host") or {}).get("torch_threads") or (header.get("environment") or {}).get(
            "torch_num_threads"
        )
        out += [{**r, "torch_threads": found} if r.get("torch_threads") is None and found else r for r in run.records]
    return out


def run_notes(base_runs: list[Run], cand_runs: list[Run], baseline: list[dict[str, Any]]) -> list[str]:
    """What the two sides' runs hold that bears on every comparison: pooled device models, timers, a shared run."""
    notes = []
    devices = sorted({str(r.get("device_name")) for r in baseline})
    if len(devices) > 1:
        notes.append(f"the baseline pools several device models ({', '.join(devices)})")
    timers = {side: sorted({str(r.get("timer")) for run in runs for r in run.records if r["status"] == "ok"})
              for side, runs in (("baseline", base_runs), ("candidate", cand_runs))}  # fmt: skip
    if timers["baseline"] and timers["candidate"] and timers["baseline"] != timers["candidate"]:
        notes.append(f"timed differently: baseline by {' / '.join(timers['baseline'])}, candidate by "
                     f"{' / '.join(timers['candidate'])}; the same work, measured another way")  # fmt: skip
    ids = {str((run.header or {}).get("run_id") or run.path.stem) for run in cand_runs}
    shared = sorted(ids & {str((run.header or {}).get("run_id") or run.path.stem) for run in base_runs})
    if shared:
        notes.append(f"the same run on both sides ({', '.join(shared)}; a copy?): its identical samples compare as "
                     "no change")  # fmt: skip
    return notes
