"""The line `tokenbench cost` opens with, per GPU model: the cheapest rental and owning, in $/Mtok.

Reporting only: picks one priced subject per GPU and reads its rows from the `CostReport`. The subject:
- serve load points: the best one that met its SLO (the highest output tokens/s per GPU, so the lowest
  $/Mtok); with no SLO given, the highest-throughput one, and the line says so; where an SLO was given
  and no point met it, the highest-throughput one, and the line says that instead;
- else decode records: the highest output tokens/s;
- else the highest tokens/s of the first token kind (prefill input, training trained, a given rate).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.cost.pricing import CostReport, GpuCost
from bench.cost.subjects import Subject, count_text
from bench.text import offer_name


@dataclass(frozen=True)
class Headline:
    """The cheapest rental and owning for one GPU model, at one subject and token kind."""

    gpu: str
    label: str  # the subject: "#3 conc 64, 1024/1024 random"
    why: str  # how it was chosen: "the best of 4 load points meeting the SLO (TTFT <= 2000 ms)"
    tokens: str  # the token kind priced: output, input, total, trained, tokens
    offer: str | None  # the cheapest offer's id; None: no rental offer
    offer_text: str | None  # "Lambda on-demand" ("*": a weak price)
    usd_per_mtok: float | None  # under the cheapest offer
    owned_usd_per_mtok: float | None  # None: no owned price in the catalog
    run_id: str | None = None
    seq: int | None = None

    @property
    def owned_over_rented(self) -> float | None:
        """Owned $/Mtok / the cheapest rented $/Mtok (below 1: owning is cheaper)."""
        if self.owned_usd_per_mtok is None or not self.usd_per_mtok:
            return None
        return self.owned_usd_per_mtok / self.usd_per_mtok

    def text(self) -> str:
        """ "H100-SXM, #0 decode 8b b32 (the highest output tokens/s of 2 decode records), output tokens:
        cheapest: Lambda on-demand $0.53/Mtok; owned $0.66/Mtok (1.24× rented)"."""
        rented = "no rental offer in the catalog" if self.offer_text is None else (
            f"{self.offer_text} {mtok(self.usd_per_mtok)}/Mtok")  # fmt: skip
        if self.owned_usd_per_mtok is None:
            owned = "owned: no server price in the catalog"
        else:
            ratio = self.owned_over_rented
            owned = f"owned {mtok(self.owned_usd_per_mtok)}/Mtok" + (f" ({ratio:.2f}× rented)" if ratio else "")
        why = f" ({self.why})" if self.why else ""
        kind = "" if self.tokens == "tokens" else f", {self.tokens} tokens"
        return f"{self.gpu}, {self.label}{why}{kind}: cheapest: {rented}; {owned}"


def mtok(value: float | None) -> str:
    """A $/Mtok figure with two decimals, or four below 10 cents: "$0.53", "$0.0412"."""
    if value is None:
        return "-"
    return f"${value:,.2f}" if value >= 0.1 else f"${value:.4f}"


def _best(subjects: list[Subject], kind: str) -> Subject:
    return max(subjects, key=lambda s: dict(s.bases).get(kind, 0.0))


def choose(subjects: list[Subject]) -> tuple[Subject, str, str]:
    """The subject a GPU's headline prices, the token kind, and how it was chosen (see the module doc)."""
    serve = [s for s in subjects if s.workload == "serve"]
    if serve:
        n = count_text(len(serve), "load point")
        slos = sorted({s.slo for s in serve if s.slo})
        met = [s for s in serve if s.slo and s.slo_met]  # with no SLO given, slo_met says nothing
        gpus = {s.num_gpus for s in serve if s.num_gpus and s.num_gpus > 1}
        per_gpu = f"; per GPU of {max(gpus)}" if gpus else ""
        if met:
            return _best(met, "output"), "output", f"the best of {n} meeting the SLO ({'; '.join(slos)}){per_gpu}"
        if slos:
            why = f"no load point met the SLO ({'; '.join(slos)}): the highest-throughput of {n}{per_gpu}"
            return _best(serve, "output"), "output", why
        return _best(serve, "output"), "output", f"no SLO given: the highest-throughput of {n}{per_gpu}"
    decode = [s for s in subjects if s.workload == "decode"]
    if decode:
        why = f"the highest output tokens/s of {count_text(len(decode), 'decode record')}" if len(decode) > 1 else ""
        return _best(decode, "output"), "output", why
    kind = subjects[0].bases[0][0]
    same = [s for s in subjects if dict(s.bases).get(kind)]
    why = f"the highest {kind} tokens/s of {count_text(len(same), 'record')}" if len(same) > 1 else ""
    return _best(same, kind), kind, why


def headline_for(report: CostReport, gc: GpuCost) -> Headline | None:
    """The headline of one GPU model; None when nothing on it was priced."""
    subjects = [s for s in report.subjects if s.gpu == gc.gpu]
    if not subjects:
        return None
    subject, kind, why = choose(subjects)
    rows = [r for r in report.rows_of(subject) if r["tokens"] == kind]
    rented = [r for r in rows if r["scenario"] != "owned"]
    owned = next((r["usd_per_mtok"] for r in rows if r["scenario"] == "owned"), None)
    cheapest = min(rented, key=lambda r: r["usd_per_mtok"]) if rented else None
    seq = f"#{subject.seq} " if subject.seq is not None else ""
    return Headline(
        gpu=gc.gpu,
        label=seq + subject.label,
        why=why,
        tokens=kind,
        offer=cheapest["scenario"] if cheapest else None,
        offer_text=_offer_text(cheapest) if cheapest else None,
        usd_per_mtok=cheapest["usd_per_mtok"] if cheapest else None,
        owned_usd_per_mtok=owned,
        run_id=subject.run_id,
        seq=subject.seq,
    )


def _offer_text(row: dict[str, Any]) -> str:
    """ "Lambda on-demand", "your quote (--usd-per-gpu-hour) 3-year"."""
    provider = "your quote" if row["scenario"] == "given" else row["provider"]
    name = offer_name(provider, row["term"])
    return name + ("*" if row.get("price_weak") else "")


def headlines(report: CostReport) -> list[Headline]:
    """One headline per GPU model priced."""
    return [h for gc in report.gpus.values() if (h := headline_for(report, gc)) is not None]
