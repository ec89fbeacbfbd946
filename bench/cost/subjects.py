"""What is priced: a measured record's token rates and power on a catalog GPU, or a rate the user gave.

Only the LLM workloads are priced, on a catalog GPU, from an ok record: every other record is
left out with the reason, which `tokenbench cost` and the report show.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bench.catalog import gpus
from bench.catalog.match import record_spec
from bench.catalog.prices import Catalog


@dataclass(frozen=True)
class Power:
    """Active and idle power of one GPU and where each figure comes from."""

    active_w: float
    idle_w: float
    active_from: str  # "measured", "given" or "estimate: ..."
    idle_from: str

    @property
    def estimated(self) -> bool:
        """True when either figure is the catalog's estimate rather than measured or given."""
        return self.active_from.startswith("estimate") or self.idle_from.startswith("estimate")


def power_for(spec: gpus.GpuSpec, active_w: float | None, idle_w: float | None, how: str = "measured") -> Power:
    """Measured (or given) power where there is some; the catalog TDP only as a labelled estimate."""
    if active_w is not None and active_w > 0:
        active, active_from = float(active_w), how
    else:
        active, active_from = spec.tdp_w, f"estimate: TDP {spec.tdp_w:g} W (no power measured)"
    if idle_w is not None and idle_w > 0:
        idle, idle_from = float(idle_w), how
    else:  # no source gives a GPU's idle draw in general; count idle hours at the active power
        idle, idle_from = active, "estimate: the active power (no idle baseline measured; an upper bound)"
    return Power(active, idle, active_from, idle_from)


@dataclass(frozen=True)
class Subject:
    """One thing to price: a measured record, or a rate the user gave."""

    gpu: str
    label: str  # workload and configuration
    bases: tuple[tuple[str, float], ...]  # (token kind, tokens/s per GPU), e.g. ("output", 1557.0)
    power: Power
    run_id: str | None = None
    seq: int | None = None
    workload: str | None = None
    batch: int | None = None
    per_user_tokens_per_s: float | None = None  # decode: the interactivity the cost goes with
    mfu: float | None = None
    compute_dtype: str | None = None


def token_bases(record: dict[str, Any]) -> list[tuple[str, float]]:
    """Tokens/s per GPU by kind: decode output, input and total; prefill input; training trained.

    Only the LLM workloads are priced: a kernel's "tokens" (attention's query positions) are not
    tokens anyone pays for."""
    tps = _positive(record.get("tokens_per_s"))
    workload = record.get("workload")
    if workload == "decode":
        out = _positive(record.get("output_tokens_per_s")) or tps
        prompt, new = _positive(record.get("param_prompt_len")), _positive(record.get("param_new_tokens"))
        if out is None:
            return []
        if not prompt or not new:
            return [("output", out)]
        inp = out * prompt / new  # the same calls read B x N prompt tokens for every B x M they write
        return [("output", out), ("input", inp), ("total", out + inp)]
    kind = {"train": "trained", "prefill": "input"}.get(str(workload))
    return [(kind, tps)] if kind and tps is not None else []


def _positive(value: Any) -> float | None:
    """A finite positive number from a record's field, else None: a results file may hold anything there."""
    if value is None or isinstance(value, bool):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) and x > 0 else None


def subject_of(record: dict[str, Any], cat: Catalog) -> tuple[Subject | None, str | None]:
    """The record as a thing to price, or None and why it is not priced."""
    if record.get("status") != "ok":
        return None, f"status {record.get('status')}, not ok"
    bases = token_bases(record)
    if not bases:
        llm = record.get("workload") in ("train", "prefill", "decode")
        return None, "no token rate in the record" if llm else "a kernel benchmark (no tokens to price)"
    spec, why = record_spec(record, cat)
    if spec is None:
        return None, f"not a catalog GPU: {why}"
    subject = Subject(
        gpu=spec.id,
        label=str(record.get("label") or record.get("workload")),
        bases=tuple(bases),
        power=power_for(spec, _positive(record.get("power_mean_w")), _positive(record.get("idle_power_w"))),
        run_id=record.get("run_id"),
        seq=record.get("seq"),
        workload=record.get("workload"),
        batch=record.get("param_batch"),
        per_user_tokens_per_s=_positive(record.get("per_user_tokens_per_s")),
        mfu=_positive(record.get("mfu")),
        compute_dtype=record.get("compute_dtype"),
    )
    return subject, None


def not_priced(run_id: Any, seq: Any, workload: Any, reason: str) -> dict[str, Any]:
    """One entry of a cost report's `skipped`: which record, and why it is not priced."""
    return {"run_id": run_id, "seq": seq, "workload": workload, "reason": reason}


def subjects_from_records(records: Iterable[dict[str, Any]], cat: Catalog) -> tuple[list[Subject], list[dict]]:
    """Every ok record with a token rate on a catalog GPU, and why each other record is not priced."""
    subjects: list[Subject] = []
    skipped: list[dict[str, Any]] = []
    for r in records:
        subject, why = subject_of(r, cat)
        if subject is None:
            skipped.append(not_priced(r.get("run_id"), r.get("seq"), r.get("workload"), str(why)))
        else:
            subjects.append(subject)
    return subjects, skipped
