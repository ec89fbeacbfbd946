"""A load point's statistics, with vLLM's (`vllm bench serve`) definitions, and its results block.

Over the completed requests (failed ones only count as failed):
- TTFT: first chunk's arrival - send time (a chunk: an event with choices, as vLLM).
- TPOT: per request, (E2EL - TTFT) / (output tokens - 1); requests with one output token or none
  have no TPOT (for goodput vLLM counts their TPOT as 0, and so does this).
- ITL: the gaps between consecutive streamed chunks, pooled over all requests (a chunk may carry
  several tokens, so ITL >= TPOT where servers batch tokens into chunks).
- E2EL: send time -> the last chunk (not [DONE]: vLLM's end).
- queue: sent - scheduled, the client-side wait for a --max-concurrency slot; only under a cap (as
  vLLM's client queue time). Without a cap the same difference is send lateness, part of the client's
  self-check (send_late_max_s, send_late_p99_s), not a queue.
- peak output tok/s (vLLM's max_output_tokens_per_s): each successful request's chunks placed at
  sent + TTFT + cumulative ITL, counted in 1 s buckets from the earliest send; the fullest bucket.
- peak concurrent requests (vLLM's): most successful requests in flight, over [sent, sent + E2EL).
Mean, median, population std (numpy.std) and percentiles (numpy.percentile, linear) of each.
Throughputs divide by the duration (first request due -> last request done): request = completed /
duration, output = output tokens / duration, total = (input + output tokens) / duration.
Goodput = requests meeting every given SLO bound (value <= bound) / duration, vLLM's rule.
tok/s/user = 1 / median TPOT.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from bench.serve.load import LoadPointRun
from bench.serve.model import Distribution, LoadPointStats, LoadSpec, RequestResult, Slo
from bench.serve.selfcheck import verdict

DEFINITIONS = (
    "TPOT and ITL as vLLM defines them: TPOT = (E2EL - TTFT) / (output tokens - 1) per request; "
    "ITL = gaps between streamed chunks, pooled (AIPerf's ITL is this TPOT); a chunk is an event with "
    "choices, E2EL ends at the last one. Difference: a stream without finish_reason or [DONE] is failed"
)
_SOURCE_TEXT = {
    "usage": "from the server's usage",
    "counted": "counted by the client (the server sent no usage)",
    "mixed": "mixed: the server's usage where sent, else counted by the client",
}
_INPUT_TEXT = {
    "usage": "from the server's usage",
    "nominal": "nominal: the dataset's count (words of a text prompt; the server sent no usage)",
    "mixed": "mixed: the server's usage where sent, else the dataset's nominal count",
}
_TITLES = {
    "ttft": ("Time to First Token", "TTFT"),
    "tpot": ("Time per Output Token (excl. 1st token)", "TPOT"),
    "itl": ("Inter-token Latency", "ITL"),
    "e2el": ("End-to-end Latency", "E2EL"),
}
_GOODPUT_KEYS = ("ttft", "tpot", "e2el")


def distribution(values: Iterable[float], percentiles: Sequence[float] = (99.0,)) -> Distribution:
    """Mean, median, population std and numpy linear percentiles; None (and no percentiles) when empty."""
    a = np.asarray(list(values), dtype=float)
    if a.size == 0:
        return Distribution(0, None, None, None, {})
    pcts = {float(p): float(np.percentile(a, p)) for p in percentiles}
    return Distribution(int(a.size), float(a.mean()), float(np.median(a)), float(a.std()), pcts)


def _source(done: list[RequestResult]) -> str:
    kinds = {r.output_tokens_source for r in done}
    if kinds == {"usage"}:
        return "usage"
    return "mixed" if "usage" in kinds else "counted"


def is_good(r: RequestResult, slo: Slo) -> bool:
    """vLLM's goodput rule for one completed request: every given bound holds (TPOT 0 with < 2 tokens)."""
    tpot = r.tpot_s if r.tpot_s is not None else 0.0
    checks = ((slo.ttft_s, r.ttft_s), (slo.tpot_s, tpot), (slo.e2el_s, r.e2el_s))
    return all(bound is None or (value is not None and value <= bound) for bound, value in checks)


def peak_output_tokens_per_s(done: Sequence[RequestResult]) -> float | None:
    """vLLM's max_output_tokens_per_s: the most chunks in one 1 s bucket (None when nothing completed)."""
    ok = [r for r in done if r.ok and r.e2el_s is not None]
    if not ok:
        return None
    start = min(r.sent_s for r in ok)
    end = max(r.sent_s + (r.e2el_s or 0.0) for r in ok)
    buckets = np.zeros(math.ceil(end - start) + 1)
    for r in ok:
        for t in r.chunk_times_s:
            b = int(r.sent_s + t - start)
            if 0 <= b < buckets.size:
                buckets[b] += 1
    return float(buckets.max())


def _input_source(done: list[RequestResult]) -> str:
    kinds = {r.input_tokens_source for r in done}
    if not kinds:
        return "none"
    return kinds.pop() if len(kinds) == 1 else "mixed"


def summarize(
    run: LoadPointRun, spec: LoadSpec, *, percentiles: Sequence[float] = (99.0,), slo: Slo | None = None
) -> LoadPointStats:
    """The statistics of one load point (definitions in this module's docstring)."""
    done = [r for r in run.results if r.ok]
    d = run.duration_s
    per_s = (lambda x: x / d) if d > 0 else (lambda x: 0.0)
    tokens_in = sum(r.input_tokens or 0 for r in done)
    tokens_out = sum(r.output_tokens or 0 for r in done)
    good = sum(is_good(r, slo) for r in done) if slo is not None else None
    check = verdict(run.client_lag_p99_s, run.client_cpu_per_process_s, d)
    waits = [r.queue_s for r in run.results]
    capped = spec.max_concurrency is not None
    late = distribution([] if capped else waits, (99.0,))
    return LoadPointStats(
        spec=spec,
        duration_s=d,
        completed=len(done),
        failed=len(run.results) - len(done),
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        output_tokens_source=_source(done) if done else "none",
        request_throughput=per_s(len(done)),
        output_throughput=per_s(tokens_out),
        total_token_throughput=per_s(tokens_in + tokens_out),
        max_concurrent_requests=run.max_concurrent,
        ttft=distribution([r.ttft_s for r in done if r.ttft_s is not None], percentiles),
        tpot=distribution([t for r in done if (t := r.tpot_s) is not None], percentiles),
        itl=distribution([g for r in done for g in r.itl_s], percentiles),
        e2el=distribution([r.e2el_s for r in done if r.e2el_s is not None], percentiles),
        queue=distribution(waits if capped else [], percentiles),
        input_tokens_source=_input_source(done),
        max_output_tokens_per_s=peak_output_tokens_per_s(done),
        slo=slo,
        good_requests=good,
        goodput=None if good is None else per_s(good),
        client_lag_max_s=run.client_lag_max_s,
        client_lag_p99_s=run.client_lag_p99_s,
        client_cpu_s=run.client_cpu_s,
        client_limited=check.client_limited,
        client_limited_reason=check.client_limited_reason,
        contended=check.contended,
        contention_reason=check.contention_reason,
        send_late_max_s=None if capped or not waits else max(waits),
        send_late_p99_s=late.percentiles.get(99.0),
    )


def parse_goodput(items: Sequence[str]) -> Slo:
    """--goodput "ttft:MS" "tpot:MS" "e2el:MS" (any subset, in ms; items may also be space-separated) -> Slo."""
    bounds: dict[str, float] = {}
    for item in (word for text in items for word in text.split()):
        key, sep, value = item.partition(":")
        if not sep or key not in _GOODPUT_KEYS:
            raise ValueError(f"--goodput {item!r}: expected KEY:MS with KEY one of ttft, tpot, e2el")
        try:
            ms = float(value)
        except ValueError:
            ms = math.nan
        if not (math.isfinite(ms) and ms >= 0):
            raise ValueError(f"--goodput {item!r}: the bound must be a number of milliseconds >= 0")
        bounds[key] = ms / 1000.0
    if not bounds:
        raise ValueError("--goodput: give at least one of ttft:MS tpot:MS e2el:MS")
    return Slo(ttft_s=bounds.get("ttft"), tpot_s=bounds.get("tpot"), e2el_s=bounds.get("e2el"))


def _line(label: str, value: object) -> str:
    if value is None:
        return f"{label:<40} {'n/a':<10}"
    if isinstance(value, float):
        return f"{label:<40} {value:<10.2f}"
    return f"{label:<40} {value!s:<10}"


def _ms(x: float | None) -> float | None:
    return None if x is None else x * 1000.0


def _pct_label(p: float) -> str:
    return f"P{int(p) if float(p).is_integer() else p}"


def _section(title: str, name: str, dist: Distribution, shown: Sequence[float] | None) -> list[str]:
    lines = [
        f"{title:-^50}",
        _line(f"Mean {name} (ms):", _ms(dist.mean)),
        _line(f"Median {name} (ms):", _ms(dist.median)),
    ]
    keys = list(dist.percentiles) if shown is None else [float(p) for p in shown]
    lines += [_line(f"{_pct_label(p)} {name} (ms):", _ms(dist.percentiles.get(p))) for p in keys]
    return lines


def per_user_tokens_per_s(stats: LoadPointStats) -> float | None:
    """tok/s/user = 1 / median TPOT (InferenceX's interactivity axis)."""
    m = stats.tpot.median
    return 1.0 / m if m else None


def format_block(
    stats: LoadPointStats,
    percentile_metrics: Sequence[str] = ("ttft", "tpot", "itl"),
    num_gpus: int | None = None,
    shown: Sequence[float] | None = None,
) -> str:
    """The results block as vLLM prints it, then tokenbench's own lines (definitions named). `shown`: the
    percentiles printed, in that order (--metric-percentiles; None: every one computed); `num_gpus` None
    when the GPUs are not known (no per-GPU line)."""
    s = stats
    rate = s.spec.request_rate
    lines = [
        f"{' Serving Benchmark Result ':=^50}",
        _line("Successful requests:", s.completed),
        _line("Failed requests:", s.failed),
    ]
    if s.spec.max_concurrency is not None:
        lines.append(_line("Maximum request concurrency:", s.spec.max_concurrency))
    lines += [
        _line("Request rate configured (RPS):", "inf" if math.isinf(rate) else float(rate)),
        _line("Benchmark duration (s):", s.duration_s),
        _line("Total input tokens:", s.input_tokens),
        _line("Total generated tokens:", s.output_tokens),
        _line("Request throughput (req/s):", s.request_throughput),
    ]
    if s.goodput is not None:
        lines.append(_line("Request goodput (req/s):", s.goodput))
    lines += [
        _line("Output token throughput (tok/s):", s.output_throughput),
        _line("Peak output token throughput (tok/s):", s.max_output_tokens_per_s),
        _line("Peak concurrent requests:", float(s.max_concurrent_requests)),
        _line("Total Token throughput (tok/s):", s.total_token_throughput),
    ]
    for m in percentile_metrics:
        if m not in _TITLES:
            raise ValueError(f"percentile metric {m!r}: expected one of {', '.join(_TITLES)}")
        title, name = _TITLES[m]
        lines += _section(title, name, getattr(s, m), shown)
    lines += _tokenbench_lines(s, num_gpus, shown)
    lines.append("=" * 50)
    return "\n".join(line.rstrip() for line in lines)


def _tokenbench_lines(s: LoadPointStats, num_gpus: int | None, shown: Sequence[float] | None) -> list[str]:
    lines = [f"{'tokenbench':-^50}", _line("Output tok/s/user (1/median TPOT):", per_user_tokens_per_s(s))]
    if num_gpus:
        lines.append(_line("Output tok/s per GPU:", s.output_throughput / num_gpus))
    if s.spec.max_concurrency is not None:
        keys = list(s.queue.percentiles) if shown is None else [float(p) for p in shown]
        lines += [
            _line("Mean queue time (ms):", _ms(s.queue.mean)),
            _line("Median queue time (ms):", _ms(s.queue.median)),
            *[_line(f"{_pct_label(p)} queue time (ms):", _ms(s.queue.percentiles.get(p))) for p in keys],
        ]
    elif s.send_late_p99_s is not None:  # no cap: the wait is the client's lateness, not a queue
        lines.append(_line("P99 send lateness (ms):", _ms(s.send_late_p99_s)))
    if s.slo is not None:
        lines.append(_line("Good requests (every SLO met):", s.good_requests))
    if s.completed == 0:
        lines.append("Tokens: nothing completed")
    else:
        lines.append(f"Output tokens: {_SOURCE_TEXT.get(s.output_tokens_source, s.output_tokens_source)}")
        lines.append(f"Input tokens: {_INPUT_TEXT.get(s.input_tokens_source, s.input_tokens_source)}")
    if s.client_limited:
        lines.append(f"Client limited: {s.client_limited_reason}")
    if s.contended:
        lines.append(f"Host busy (contended): {s.contention_reason}")
    lines.append(DEFINITIONS)
    return lines
