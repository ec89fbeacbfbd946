"""What is priced: a measured record's token rates and power on a catalog GPU, or a rate the user gave.

Only the LLM workloads and serving load points are priced, on a catalog GPU, from an ok record:
every other record is left out with the reason, which `tokenbench cost` and the report show.
A serve record (one load point of `tokenbench serve`) is priced like a decode record, per GPU: its
throughputs are the whole server's, so they are divided by `num_gpus`; its power_mean_w is the sum
over the GPUs measured, so it is divided by `energy_gpus` (by `num_gpus` where that is absent).
"""

from __future__ import annotations

import math
from collections import Counter
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
    slo_met: bool | None = None  # serve: the load point met its SLO (None: no SLO was given)
    slo: str | None = None  # serve: the SLO asked, e.g. "TTFT <= 2000 ms, TPOT <= 200 ms"
    num_gpus: int | None = None  # serve: the GPUs the server's throughput is divided over


def token_bases(record: dict[str, Any]) -> list[tuple[str, float]]:
    """Tokens/s per GPU by kind: decode output, input and total; prefill input; training trained.

    Only the LLM workloads are priced: a kernel's "tokens" (attention's query positions) are not
    tokens anyone pays for."""
    tps = _positive(record.get("tokens_per_s"))
    workload = record.get("workload")
    if workload == "serve":
        return serve_bases(record)
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


def serve_gpus(record: dict[str, Any]) -> int:
    """The GPUs a serve record's server ran on (`num_gpus`; 1 when absent or not a positive whole number)."""
    n = record.get("num_gpus")
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1


def serve_bases(record: dict[str, Any]) -> list[tuple[str, float]]:
    """A load point's output, input and total tokens/s per GPU: output_throughput (or output_tokens_per_s)
    and total_token_throughput are the whole server's, over `num_gpus`; input = total - output."""
    n = serve_gpus(record)
    out = _positive(record.get("output_throughput")) or _positive(record.get("output_tokens_per_s"))
    if out is None:
        return []
    total = _positive(record.get("total_token_throughput"))
    if total is None or total < out:
        return [("output", out / n)]
    bases = [("output", out / n), ("input", (total - out) / n), ("total", total / n)]
    return [(kind, tps) for kind, tps in bases if tps > 0]


def slo_text(record: dict[str, Any]) -> str | None:
    """The SLO a serve record was judged by, e.g. "TTFT <= 2000 ms, TPOT <= 200 ms"; None when none was given."""
    parts = [f"{name} <= {1000 * v:g} ms" for name, key in (("TTFT", "slo_ttft_s"), ("TPOT", "slo_tpot_s"),
             ("E2EL", "slo_e2el_s")) if (v := _positive(record.get(key))) is not None]  # fmt: skip
    return ", ".join(parts) or None


def _positive(value: Any) -> float | None:
    """A finite positive number from a record's field, else None: a results file may hold anything there."""
    if value is None or isinstance(value, bool):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) and x > 0 else None


def subject_of(record: dict[str, Any], cat: Catalog, serve_gpu: str | None = None) -> tuple[Subject | None, str | None]:
    """The record as a thing to price, or None and why it is not priced. `serve_gpu` (--gpu) is the GPU
    a serve record's server ran on where the record's own device (the client's) is not a catalog GPU."""
    if record.get("status") != "ok":
        return None, f"status {record.get('status')}, not ok"
    bases = token_bases(record)
    if not bases:
        llm = record.get("workload") in ("train", "prefill", "decode", "serve")
        return None, "no token rate in the record" if llm else "a kernel benchmark (no tokens to price)"
    spec, why = record_spec(record, cat)
    if spec is None and serve_gpu is not None and record.get("workload") == "serve":
        spec, why = cat.gpus[serve_gpu], None  # the client ran elsewhere: --gpu names the server's GPU
    if spec is None:
        return None, f"not a catalog GPU: {why}"
    serve = record.get("workload") == "serve"
    n = serve_gpus(record) if serve else 1
    power = _positive(record.get("power_mean_w"))
    if serve and power:  # the sum over the GPUs measured (energy_gpus), else over the server's
        power /= _positive(record.get("energy_gpus")) or n
    subject = Subject(
        gpu=spec.id,
        label=str(record.get("label") or record.get("workload")),
        bases=tuple(bases),
        power=power_for(spec, power, _positive(record.get("idle_power_w"))),
        run_id=record.get("run_id"),
        seq=record.get("seq"),
        workload=record.get("workload"),
        batch=record.get("param_batch"),
        per_user_tokens_per_s=_positive(record.get("per_user_tokens_per_s")),
        mfu=_positive(record.get("mfu")),
        compute_dtype=record.get("compute_dtype"),
        slo_met=record.get("slo_met") if serve and isinstance(record.get("slo_met"), bool) else None,
        slo=slo_text(record) if serve else None,
        num_gpus=n if serve else None,
    )
    return subject, None


def not_priced(run_id: Any, seq: Any, workload: Any, reason: str, gpu: str | None = None) -> dict[str, Any]:
    """One entry of a cost report's `skipped`: which record, and why it is not priced (`gpu`: the
    catalog GPU it ran on, where it has no price)."""
    return {"run_id": run_id, "seq": seq, "workload": workload, "reason": reason, **({"gpu": gpu} if gpu else {})}


def subjects_from_records(
    records: Iterable[dict[str, Any]], cat: Catalog, serve_gpu: str | None = None
) -> tuple[list[Subject], list[dict]]:
    """Every ok record with a token rate on a catalog GPU, and why each other record is not priced."""
    subjects: list[Subject] = []
    skipped: list[dict[str, Any]] = []
    for r in records:
        subject, why = subject_of(r, cat, serve_gpu)
        if subject is None:
            skipped.append(not_priced(r.get("run_id"), r.get("seq"), r.get("workload"), str(why)))
        else:
            subjects.append(subject)
    return subjects, skipped


# Why a record is not priced, by the start of its reason (the reasons above and bench/cost/pricing.py's),
# as counted in the one-line "nothing to price" error.
SKIP_KINDS = (  # (start of the reason, what one such record is, what several are)
    ("status ", "not ok (failed or skipped)", "not ok (failed or skipped)"),
    ("no token rate", "without tokens/s", "without tokens/s"),
    ("a kernel benchmark", "kernel benchmark (no tokens to price)", "kernel benchmarks (no tokens to price)"),
    ("not a catalog GPU", "on a device that is not a catalog GPU", "on devices that are not catalog GPUs"),
    ("no owned server price and no rental offer", "on a GPU with no catalog price", "on GPUs with no catalog price"),
)


def count_text(n: int, noun: str) -> str:
    """ "1 record", "2 records"."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def skipped_summary(skipped: list[dict[str, Any]]) -> str:
    """ "3 records skipped: 2 without tokens/s, 1 on a device that is not a catalog GPU (no catalog entry
    matches 'cpu')": counts per reason, each with its detail where all its records share one."""
    kinds: Counter[str] = Counter()
    details: dict[str, set[str]] = {}
    for entry in skipped:
        reason = str(entry.get("reason"))
        kind = next((prefix for prefix, _, _ in SKIP_KINDS if reason.startswith(prefix)), reason)
        kinds[kind] += 1
        detail = entry.get("gpu") or (reason.split(": ", 1)[1] if ": " in reason else None)
        details.setdefault(kind, set()).add(str(detail) if detail else "")
    parts = []
    phrases = {prefix: (one, many) for prefix, one, many in SKIP_KINDS}
    for kind, n in kinds.most_common():
        detail = next(iter(details[kind])) if len(details[kind]) == 1 else ""
        one, many = phrases.get(kind, (kind, kind))
        parts.append(f"{n} {one if n == 1 else many}" + (f" ({detail})" if detail else ""))
    return f"{count_text(len(skipped), 'record')} skipped: {', '.join(parts)}"
