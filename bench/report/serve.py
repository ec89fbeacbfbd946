"""The report's serve table: one row per load point of `tokenbench serve` (the records of bench/serve).

Figures keep vLLM's definitions (bench/serve/README.md): TTFT, TPOT = (E2EL - TTFT) / (output tokens - 1),
tok/s/user = 1 / median TPOT, goodput = requests per second that met every SLO.
"""

from __future__ import annotations

from typing import Any

from bench.report.columns import Col, client_limited, contended
from bench.text import cell, duration, integer, number, percent, usd_compact


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def load_point(record: dict[str, Any]) -> str:
    """The load point as a reader names it: "conc 64", "rate 5/s", "rate 5/s, conc 64", "rate inf"."""
    rate, conc = _finite(record.get("param_request_rate")), _finite(record.get("param_max_concurrency"))
    parts = []
    if rate is not None:
        parts.append(f"rate {rate:g}/s")
    if conc is not None:
        parts.append(f"conc {conc:g}")
    return ", ".join(parts) or "rate inf"


def load_short(record: dict[str, Any]) -> str:
    """The load point in a plot's point label: "c64", "r5", "r5 c64", "inf"."""
    rate, conc = _finite(record.get("param_request_rate")), _finite(record.get("param_max_concurrency"))
    parts = ([f"r{rate:g}"] if rate is not None else []) + ([f"c{conc:g}"] if conc is not None else [])
    return " ".join(parts) or "inf"


def per_gpu(record: dict[str, Any]) -> float | None:
    """Output tokens/s per GPU: the record's figure, else output tokens/s over its GPUs (one when unknown)."""
    value = _finite(record.get("output_tokens_per_s_per_gpu"))
    if value is not None:
        return value
    rate = _finite(record.get("output_tokens_per_s")) or _finite(record.get("output_throughput"))
    gpus = _finite(record.get("num_gpus")) or 1.0
    return None if rate is None else rate / gpus


def slo_text(record: dict[str, Any]) -> str:
    """ "yes 99.5%" / "no 80.0%" (the attainment), "-" when no SLO was asked."""
    met = record.get("slo_met")
    if met is None:
        return "-"
    attainment = _finite(record.get("slo_attainment"))
    return ("yes" if met else "no") + ("" if attainment is None else f" {percent(attainment)}")


def serve_row(record: dict[str, Any]) -> dict[str, Any]:
    """The figures the serve table shows that are not fields of the record as written."""
    return {"load_point": load_point(record), "tokens_per_s_per_gpu": per_gpu(record), "slo_text": slo_text(record)}


def serve_order(record: dict[str, Any]) -> tuple[Any, ...]:
    """Load points in the order a sweep runs them: per run and server, by concurrency, then by rate (none last)."""
    rate, conc = _finite(record.get("param_request_rate")), _finite(record.get("param_max_concurrency"))
    inf = float("inf")
    where = (str(record.get(k)) for k in ("hostname", "gpu", "run_id", "param_server_model"))
    return (*where, conc if conc is not None else inf, rate if rate is not None else inf)


SERVE_COLUMNS = [
    Col("load_point", "load", cell, False),
    Col("request_throughput", "req/s"),
    Col("output_tokens_per_s", "out tok/s", lambda x: number(x, 5), mark=lambda r: contended(r) + client_limited(r)),
    Col("tokens_per_s_per_gpu", "tok/s/GPU", lambda x: number(x, 5)),
    Col("per_user_tokens_per_s", "tok/s/user"),
    Col("ttft_median_s", "TTFT p50", duration),
    Col("ttft_p99_s", "TTFT p99", duration),
    Col("tpot_median_s", "TPOT p50", duration),
    Col("tpot_p99_s", "TPOT p99", duration),
    Col("goodput", "goodput req/s"),
    Col("slo_text", "SLO met", cell, False),
    Col("requests_completed", "done", integer),
    Col("requests_failed", "failed", integer),
    Col("failure_rate", "fail %", percent),
    Col("power_mean_w", "W"),
    Col("energy_per_token_j", "J/token"),
    Col("usd_per_mtok_owned", "$/Mtok owned", usd_compact),
    Col("usd_per_mtok_rented", "$/Mtok rented", usd_compact),
]
