"""The types the serving load generator shares between its parts (data only, no I/O).

Times are seconds. Times of one request are relative to the load point's start (`t0`, a
time.perf_counter() reading taken when the first request was due), so a request's timeline reads
scheduled -> sent -> first token -> chunks -> done. Metric names and definitions are vLLM's
(`vllm bench serve`); bench/serve/README.md states them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Literal

TokenSource = Literal["usage", "counted"]  # the server's `usage` block, or chunks/text counted by the client


@dataclass(frozen=True)
class RequestSpec:
    """One request as the dataset made it; the same seed gives the same list of these."""

    index: int
    prompt: str | list[int]  # text, or token ids (sent as `prompt` to /v1/completions)
    input_tokens: int  # known prompt length in tokens (from the tokenizer, or the dataset's count)
    max_tokens: int  # requested output length
    ignore_eos: bool = False
    prompt_text: str | None = None  # a token-id prompt decoded to text, for chat endpoints (which take text only)


@dataclass
class RequestResult:
    """What one request did. A failed request keeps whatever timings it got, and its reason."""

    index: int
    scheduled_s: float  # when the arrival process said it was due
    sent_s: float  # when the client sent it (later than scheduled_s when waiting for --max-concurrency)
    ok: bool = False
    error: str | None = None  # one line: "HTTP 429: ...", "timed out after 600 s", "stream ended early", ...
    http_status: int | None = None
    ttft_s: float | None = None  # first chunk's arrival (an event with choices, as vLLM) - sent_s
    e2el_s: float | None = None  # last chunk's arrival (an event with choices, not [DONE]) - sent_s
    chunk_times_s: list[float] = field(default_factory=list)  # arrival of each event with choices - sent_s
    input_tokens: int | None = None  # usage.prompt_tokens where sent, else the dataset's count
    input_tokens_source: Literal["usage", "nominal"] = "nominal"  # nominal: the dataset's count (words for text)
    output_tokens: int | None = None
    output_tokens_source: TokenSource | None = None
    generated_text: str = ""
    done_s: float | None = None  # when it ended, relative to t0, failed or not (for concurrency and the sidecar)

    @property
    def queue_s(self) -> float:
        """Client-side wait before sending (for a concurrency slot): sent - scheduled, never negative."""
        return max(0.0, self.sent_s - self.scheduled_s)

    @property
    def tpot_s(self) -> float | None:
        """vLLM's TPOT: (E2EL - TTFT) / (output tokens - 1); None with fewer than 2 output tokens."""
        if self.e2el_s is None or self.ttft_s is None or not self.output_tokens or self.output_tokens < 2:
            return None
        return (self.e2el_s - self.ttft_s) / (self.output_tokens - 1)

    @property
    def itl_s(self) -> list[float]:
        """vLLM's ITL: the gaps between consecutive chunks with choices (one per chunk after the first)."""
        t = self.chunk_times_s
        return [b - a for a, b in itertools.pairwise(t)]


@dataclass(frozen=True)
class LoadSpec:
    """One load point's settings (vLLM's flag names in comments)."""

    request_rate: float = float("inf")  # --request-rate, requests/s; inf sends all at once
    burstiness: float = 1.0  # --burstiness: gamma shape of inter-arrival times; 1 = Poisson
    max_concurrency: int | None = None  # --max-concurrency: requests in flight at most
    num_prompts: int = 1000  # --num-prompts
    seed: int = 0  # --seed: the arrival times and the dataset


@dataclass(frozen=True)
class Distribution:
    """Summary of one metric over a load point's requests, seconds (vLLM's mean/median/std/percentiles)."""

    n: int
    mean: float | None
    median: float | None
    std: float | None  # population std, as numpy.std (vLLM's)
    percentiles: dict[float, float]  # e.g. {99.0: 0.123}, from --metric-percentiles


@dataclass(frozen=True)
class Slo:
    """--goodput: a request counts when every given bound holds (milliseconds in the flag, seconds here)."""

    ttft_s: float | None = None
    tpot_s: float | None = None
    e2el_s: float | None = None


@dataclass
class LoadPointStats:
    """A load point's statistics, computed from its RequestResults (bench/serve/metrics.py)."""

    spec: LoadSpec
    duration_s: float  # first request due -> last request done (vLLM's benchmark_duration)
    completed: int
    failed: int
    input_tokens: int  # over completed requests
    output_tokens: int
    output_tokens_source: str  # usage | counted | mixed | none (nothing completed)
    request_throughput: float  # completed / duration_s
    output_throughput: float  # output_tokens / duration_s
    total_token_throughput: float  # (input_tokens + output_tokens) / duration_s
    max_concurrent_requests: int  # vLLM's peak: most successful requests in flight at once, [sent, sent + E2EL)
    ttft: Distribution
    tpot: Distribution
    itl: Distribution
    e2el: Distribution
    queue: Distribution  # only under --max-concurrency (empty otherwise: the wait is send lateness, not queue)
    input_tokens_source: str = "nominal"  # usage | nominal | mixed | none
    max_output_tokens_per_s: float | None = None  # vLLM's peak: most chunks in one 1 s bucket
    slo: Slo | None = None
    good_requests: int | None = None  # completed requests that met every SLO bound
    goodput: float | None = None  # good_requests / duration_s (requests/s)
    client_lag_max_s: float | None = None  # event-loop lag: most a due timer fired late
    client_lag_p99_s: float | None = None
    client_cpu_s: float | None = None  # the client's CPU time (user + sys) during the load
    client_limited: bool = False  # True when the client's own work limited the rate
    client_limited_reason: str | None = None
    contended: bool = False  # True when other processes on the host starved the client
    contention_reason: str | None = None
    send_late_max_s: float | None = None  # without a cap: how late requests were sent after their due time
    send_late_p99_s: float | None = None
