"""A whole training run from a measured (or given) MFU: its GPU-hours, days, energy and dollars.

FLOPs = 6 N D; GPU-hours = FLOPs / (MFU x dense peak) / 3600; days = GPU-hours / GPUs / 24 (the
formulas are bench/cost/model.py). Owned and committed rates are amortised at the site utilisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.catalog import gpus
from bench.catalog.prices import Catalog, Offer
from bench.cost.model import rented_usd_per_useful_hour, training_flops, training_gpu_hours
from bench.cost.scenario import owned_for
from bench.cost.subjects import Power, Subject

if TYPE_CHECKING:
    from bench.cost.pricing import GpuCost


def training_tokens_per_s(mfu: float, peak_flops: float, params: float) -> float:
    """Tokens/s per GPU a training run reaches at `mfu`: MFU x dense peak / (6 N), the FLOPs of the
    projection's own count (6 N D) per token."""
    return mfu * peak_flops / training_flops(params, 1.0)


@dataclass(frozen=True)
class Projection:
    """A whole training run from a measured MFU: FLOPs = 6 N D."""

    params: float
    tokens: float
    n_gpus: int
    mfu: float
    mfu_from: str
    dtype: str
    peak_flops: float
    flops: float
    gpu_hours: float
    days: float
    power_w: float  # the active power the energy is counted at
    power_from: str
    energy_mwh: float  # GPU-hours x power x PUE
    usd: dict[str, float]  # scenario id ("owned" or an offer id) -> $ for the run
    usd_per_useful_hour: dict[str, float]  # the rate each is priced at
    utilisation: float  # owned and committed rates are amortised at it: the fleet stays this busy


def project_training(
    cat: Catalog,
    gpu_id: str,
    power: Power,
    params: float,
    tokens: float,
    n_gpus: int,
    mfu: float,
    mfu_from: str,
    dtype: str = "bf16",
    offers: list[Offer] | None = None,
) -> Projection:
    """A training run of `params` on `tokens` over `n_gpus` at `mfu`: its GPU-hours, days, energy and $."""
    if params <= 0 or tokens <= 0 or n_gpus <= 0:
        raise ValueError("training projection: parameters, tokens and GPUs must be positive")
    if not 0 < mfu <= 1:
        raise ValueError(f"training projection: MFU must be in (0, 1], got {mfu}")
    peak = gpus.peak_flops(cat.gpus[gpu_id], dtype)
    if peak is None:
        raise ValueError(f"training projection: the catalog has no {dtype} peak for {gpu_id}")
    flops = training_flops(params, tokens)
    gpu_hours = training_gpu_hours(flops, mfu, peak)
    u = cat.value("utilisation")
    rates: dict[str, float] = {}
    owned = owned_for(cat, gpu_id, power)
    if owned is not None:
        rates["owned"] = owned.usd_per_useful_hour(u)
    for offer in offers if offers is not None else cat.offers_for(gpu_id):
        rates[offer.id] = rented_usd_per_useful_hour(offer.usd_per_gpu_hour, offer.committed, u)
    return Projection(
        params=params,
        tokens=tokens,
        n_gpus=n_gpus,
        mfu=mfu,
        mfu_from=mfu_from,
        dtype=dtype,
        peak_flops=peak,
        flops=flops,
        gpu_hours=gpu_hours,
        days=gpu_hours / n_gpus / 24,
        power_w=power.active_w,
        power_from=power.active_from,
        energy_mwh=gpu_hours * power.active_w / 1000 * cat.value("pue") / 1000,
        usd={k: gpu_hours * v for k, v in rates.items()},
        usd_per_useful_hour=rates,
        utilisation=u,
    )


def projection_for(
    cat: Catalog,
    gc: GpuCost,
    subjects: list[Subject],
    params: float,
    tokens: float,
    n_gpus: int,
    mfu: float | None = None,
) -> Projection:
    """The training projection for one GPU: from the given MFU, else its best measured training record."""
    if mfu is not None:
        return project_training(
            cat, gc.gpu, gc.focus.power, params, tokens, n_gpus, mfu, "given (--mfu)", offers=gc.offers
        )
    trained = [s for s in subjects if s.gpu == gc.gpu and s.workload == "train" and s.mfu]
    if not trained:
        raise ValueError(f"training projection for {gc.gpu}: no training record with an MFU; pass --mfu")

    def dtype_of(s: Subject) -> str:
        return s.compute_dtype if s.compute_dtype in gpus.PEAK_DTYPES else "bf16"

    def achieved(s: Subject) -> float:  # FLOP/s, so a bf16 record at 40% does not beat fp8 at 30%
        return (s.mfu or 0.0) * (gpus.peak_flops(cat.gpus[gc.gpu], dtype_of(s)) or 0.0)

    best = max(trained, key=achieved)
    dtype = dtype_of(best)
    where = f", run {best.run_id} seq {best.seq}" if best.run_id else ""
    return project_training(
        cat,
        gc.gpu,
        best.power,
        params,
        tokens,
        n_gpus,
        best.mfu or 0.0,
        f"measured: {best.label}{where}",
        dtype=dtype,
        offers=gc.offers,
    )
