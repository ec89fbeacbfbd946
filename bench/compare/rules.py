"""The rules that judge one configuration measured on both sides, and what must match before it is compared.

What must match (`like_for_like`): the device model (`device_name`, a GPU or CPU model) always,
and on the CPU (device_kind cpu) the torch intra-op thread count (`torch_threads`, else the run
header's): the same code with 1 or 2 threads is a different measurement, not a regression. A
configuration the baseline has only otherwise is SKIP, unless `allow_different_devices`.

The verdict (`verdict`), from the change in median and the low end of its interval:

- identical samples on both sides (the same multiset of times, as a run and a copy of it give):
  PASS, no change, with the noise and a busy host noted in the reason; there is nothing to judge;
- FAIL when the low end is above the fail threshold and every record has MIN_SAMPLES or more;
- WARN when it is slower (the low end above 0) by more than the warn threshold, when a side's
  CV was above its threshold (named: the baseline, the candidate, or both sides), or when a
  record has under MIN_SAMPLES samples;
- PASS otherwise;
- then a busy host caps it: where a record of either side is `contended` (other processes used
  its CPUs during the timed window), the verdict is WARN, whatever the change, faster included,
  and the reason names the side and the contention (and what the verdict would have been). A
  busy host slows every call about evenly, so neither the CV nor the interval sees it.

A record whose `unstable` is null (a serve record leaves it to its own checks) is not noisy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.text import plural

MIN_SAMPLES = 3  # fewer on a side: no interval worth the name, never more than WARN
SIDES = ("baseline", "candidate")


@dataclass(frozen=True)
class Flags:
    """What the records of each side say about how they were measured."""

    few: bool  # a record has under MIN_SAMPLES samples
    noisy: tuple[str, ...]  # the sides with a record whose CV was above its threshold
    busy: dict[str, str]  # side: its contention, for the sides with a contended record
    identical: bool  # both sides hold the same samples


def on_sides(sides: tuple[str, ...] | list[str]) -> str:
    """Which sides: "both sides", "the baseline" or "the candidate"."""
    return "both sides" if len(sides) == len(SIDES) else f"the {sides[0]}"


def contention(records: list[dict[str, Any]]) -> str | None:
    """A side's contention in words, from its first contended record; None where none was contended."""
    busy = [r for r in records if r.get("contended")]
    if not busy:
        return None
    reason = str(busy[0].get("contention_reason") or "no reason recorded")
    return reason if len(records) == 1 else f"{len(busy)} of {len(records)} records, first: {reason}"


def flags(
    base: list[dict[str, Any]], cand: list[dict[str, Any]], base_sorted: np.ndarray, cand_sorted: np.ndarray
) -> Flags:
    """The flags of a configuration's baseline and candidate records (their pooled samples sorted)."""
    sides = {"baseline": base, "candidate": cand}
    few = min(len(r["samples_s"]) for r in base + cand) < MIN_SAMPLES
    noisy = tuple(s for s, rs in sides.items() if any(r.get("unstable") for r in rs))
    busy = {s: text for s, rs in sides.items() if (text := contention(rs)) is not None}
    return Flags(few, noisy, busy, bool(np.array_equal(base_sorted, cand_sorted)))


def busy_text(busy: dict[str, str]) -> str:
    """Which side was measured on a busy host, and how busy."""
    if len(busy) == len(SIDES):
        return f"both sides measured on a busy host (baseline: {busy['baseline']}; candidate: {busy['candidate']})"
    ((side, text),) = busy.items()
    return f"{side} measured on a busy host ({text})"


def noisy_text(noisy: tuple[str, ...]) -> str:
    return f"CV above the threshold on {on_sides(noisy)}"


def verdict(change: float, low: float, f: Flags, fail: float, warn: float) -> tuple[str, str]:
    """PASS, WARN or FAIL for a measured change with the low end of its interval, and why (none for a plain PASS)."""
    if f.identical:
        noted = [t for t in (noisy_text(f.noisy) if f.noisy else "", busy_text(f.busy) if f.busy else "") if t]
        return "PASS", "identical samples on both sides: no change" + (f" ({'; '.join(noted)})" if noted else "")
    found, why = _interval(change, low, f, fail, warn)
    if not f.busy:
        return found, why
    if found == "FAIL":
        return "WARN", f"{busy_text(f.busy)}: at most WARN (else FAIL: {why})"
    return "WARN", "; ".join(t for t in (busy_text(f.busy), why) if t)


def _interval(change: float, low: float, f: Flags, fail: float, warn: float) -> tuple[str, str]:
    pct = f"{100 * fail:g}%"
    if low > fail and not f.few:
        return "FAIL", f"slower by more than {pct} beyond the noise"
    if low > fail:
        return "WARN", f"slower by more than {pct}, but a record has under {MIN_SAMPLES} samples"
    if change > fail and low > 0:
        return "WARN", f"slower, but the interval reaches below the {pct} limit"
    if change > warn and low > 0:
        return "WARN", f"slower by more than {100 * warn:g}%, under the {pct} limit"
    if f.noisy:
        return "WARN", f"{noisy_text(f.noisy)}: the medians are noisy"
    if f.few:
        return "WARN", f"a record has under {MIN_SAMPLES} samples: too few to judge"
    if change > fail:
        return "PASS", f"{100 * change:+.1f}% but inside the noise"
    return "PASS", ""


def _threads(r: dict[str, Any]) -> Any:
    return r.get("torch_threads")


@dataclass(frozen=True)
class Match:
    """The baseline records measured like the candidate's, what differs where that is allowed, and why a
    configuration is SKIP where nothing is left."""

    same: list[dict[str, Any]]
    differs: dict[str, str]  # "devices" / "threads": the difference in words, where compared anyway
    skip: str | None = None
    skip_kind: str | None = None  # "devices" or "threads"


def like_for_like(same: list[dict[str, Any]], cand: list[dict[str, Any]], on_cpu: bool, allow: bool) -> Match:
    """The baseline records `same` filtered to the candidate's device model and, on the CPU, its torch threads."""
    device = cand[0].get("device_name")
    threads = {_threads(r) for r in cand} - {None}
    checks = [("devices", "device_name", {device} - {None}, "different device models")]
    if on_cpu:
        checks.append(("threads", "torch_threads", threads, "different CPU thread counts"))
    differs = {}
    for kind, key, ours, what in checks:
        theirs = sorted({r[key] for r in same if r.get(key) is not None and r[key] not in ours}, key=str)
        if not theirs or not ours:
            continue
        shown_b, shown_c = ", ".join(map(str, theirs)), ", ".join(map(str, sorted(ours, key=str)))
        if allow:
            label = "devices differ" if kind == "devices" else "torch threads differ"
            differs[kind] = f"{label}: baseline {shown_b}, candidate {shown_c}"
            continue
        same = [r for r in same if r.get(key) is None or r[key] in ours]
        if not same:
            said = (f"baseline on {shown_b}, candidate on {shown_c}" if kind == "devices" else
                    f"baseline ran {plural_threads(theirs)}, candidate {shown_c} on the CPU")  # fmt: skip
            return Match([], {}, f"{said}: {what} are compared only with --allow-different-devices", kind)
    return Match(same, differs)


def plural_threads(counts: list[Any]) -> str:
    return plural(counts[0], "torch thread") if len(counts) == 1 else f"{', '.join(map(str, counts))} torch threads"
