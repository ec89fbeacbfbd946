"""Record fields of a serving load point (family `serve`, written by `tokenbench serve`).

Merged into bench.results.schema.FIELDS; bench/serve/README.md documents each one. A field listed
here is a number unless it is named in SERVE_INT, SERVE_BOOL or SERVE_STR. Fields the schema already
has (output_tokens_per_s, per_user_tokens_per_s, ttft_median_s, energy_j, samples_s, ...) are reused
with the same meaning, not redefined here. Latencies are seconds; metric names are vLLM's.
"""

from __future__ import annotations

SERVE_FIELDS: dict[str, str] = {
    "param_dataset": "serve: the dataset the requests came from: random | sharegpt | prefix_repetition",
    "param_input_len": "serve: requested prompt length in tokens (random datasets; null for sharegpt)",
    "param_output_len": "serve: requested output length in tokens (max_tokens)",
    "param_range_ratio": "serve: lengths drawn uniformly within (1 +- range_ratio) x the requested length",
    "param_request_rate": "serve: requests/s of the arrival process; null means inf (every request sent at once)",
    "param_burstiness": "serve: gamma shape of the inter-arrival times (1 = Poisson)",
    "param_max_concurrency": "serve: most requests in flight at once (null: no cap)",
    "param_num_prompts": "serve: requests in the load point",
    "param_endpoint": "serve: the API path the requests went to (/v1/completions or /v1/chat/completions)",
    "param_server_model": "serve: the model as GET /v1/models lists it: the listed id equal to --model, else the "
    "first listed when --model is absent; null when --model is not listed (warned) or the check was skipped",
    "requests_completed": "serve: requests that finished with a whole stream",
    "requests_failed": "serve: requests that failed (HTTP error, timeout, cut stream, interrupted), each with a "
    "reason in the requests sidecar",
    "failure_rate": "serve: requests_failed / (requests_completed + requests_failed)",
    "input_tokens_total": "serve: prompt tokens of the completed requests",
    "output_tokens_total": "serve: output tokens of the completed requests",
    "output_tokens_source": "serve: where output token counts came from: usage (the server's), counted (by the "
    "client, one per streamed chunk with text), mixed, or none (nothing completed)",
    "input_tokens_source": "serve: where input token counts came from: usage (the server's prompt_tokens), nominal "
    "(the dataset's count: words of a text prompt), mixed, or none (nothing completed)",
    "max_output_tokens_per_s": "serve: vLLM's peak output throughput: the most streamed chunks in one 1 s bucket "
    "(chunks placed at send + TTFT + cumulative ITL, buckets from the earliest send)",
    "duration_s": "serve: first request due to last request done (vLLM's benchmark duration)",
    "request_throughput": "serve: requests_completed / duration_s (req/s)",
    "output_throughput": "serve: output_tokens_total / duration_s (tok/s); output_tokens_per_s holds the same",
    "total_token_throughput": "serve: (input_tokens_total + output_tokens_total) / duration_s",
    "num_gpus": "serve: GPUs serving the model (--num-gpus, else the GPUs NVML sees on this node, else 1)",
    "output_tokens_per_s_per_gpu": "serve: output_throughput / num_gpus, the y axis of the interactivity curve",
    "max_concurrent_requests": "serve: vLLM's peak concurrency: most successful requests in flight at once over "
    "[sent, sent + E2EL)",
    "ttft_mean_s": "serve: mean TTFT, request sent to first content chunk (also ttft_median_s, _p90_s, _p99_s)",
    "ttft_std_s": "serve: population standard deviation of TTFT (numpy.std, as vLLM)",
    "tpot_mean_s": "serve: mean TPOT, per request (E2EL - TTFT) / (output tokens - 1) (vLLM's; AIPerf calls it ITL)",
    "tpot_std_s": "serve: population standard deviation of TPOT",
    "itl_mean_s": "serve: mean ITL, gaps between consecutive streamed chunks pooled over requests",
    "itl_std_s": "serve: population standard deviation of ITL",
    "e2el_mean_s": "serve: mean end-to-end latency, request sent to its last chunk with choices (vLLM's end)",
    "e2el_median_s": "serve: median end-to-end latency; also _p90_s, _p99_s",
    "e2el_std_s": "serve: population standard deviation of E2EL",
    "queue_mean_s": "serve: mean client queue time, due to sent, waiting for a --max-concurrency slot; null "
    "without a cap (that difference is send lateness: send_late_max_s)",
    "queue_median_s": "serve: median client queue time; also _p90_s, _p99_s",
    "queue_std_s": "serve: population standard deviation of the client queue time",
    "slo_ttft_s": "serve: the TTFT bound of the SLO (--goodput ttft:MS or --slo-preset), seconds; null: none",
    "slo_tpot_s": "serve: the TPOT bound of the SLO, seconds; null: none",
    "slo_e2el_s": "serve: the E2EL bound of the SLO, seconds; null: none",
    "good_requests": "serve: completed requests that met every SLO bound",
    "goodput": "serve: good_requests / duration_s (req/s, DistServe's and vLLM's goodput)",
    "slo_attainment": "serve: good_requests / (requests_completed + requests_failed)",
    "slo_target": "serve: the share of requests that must meet the SLO (--slo-target, default 0.99); null under "
    "the mlperf-p99 rule",
    "slo_rule": "serve: how slo_met is decided: goodput-attainment (slo_attainment >= slo_target; --goodput) or "
    "mlperf-p99 (an SLO preset: p99 TTFT <= bound and p99 TPOT <= bound, each separately, MLPerf's rule)",
    "slo_met": "serve: the SLO verdict by slo_rule (null without an SLO)",
    "client_lag_max_s": "serve: the client's event-loop lag, the most a due timer fired late",
    "client_lag_p99_s": "serve: 99th percentile of the client's event-loop lag",
    "client_cpu_s": "serve: the client's CPU time (user + system) during the load",
    "client_limited": "serve: true when the client's own work (its event loop or CPU) limited the load; a client "
    "starved by other processes is `contended` instead",
    "client_limited_reason": "serve: why client_limited is true (lag, CPU saturation)",
    "client_processes": "serve: client processes that sent the point: --client-processes, at most the point's "
    "concurrency cap",
    "send_late_max_s": "serve: without --max-concurrency, the most a request was sent after its due time (the "
    "client's own lateness; null under a cap, where the wait is queue time)",
    "send_late_p99_s": "serve: 99th percentile of the send lateness (null under a cap)",
    "energy_gpus": "serve: GPUs whose energy energy_j sums (--energy-gpus, else every GPU NVML sees when that is "
    "--num-gpus)",
    "num_warmups": "serve: requests sent before the load point and not measured",
    "sweep": "serve: the sweep the point belongs to: concurrency | rate | slo_search (absent for a single point)",
    "scenario": "serve: the standard scenario (bench/serve/scenarios.toml) that set the lengths, if any",
    "slo_preset": "serve: the SLO preset (bench/serve/scenarios.toml) that set the SLO, if any",
    "imported_from": "serve: the file a record was imported from (vllm bench serve --save-result JSON)",
}
SERVE_INT: tuple[str, ...] = (
    "requests_completed", "requests_failed", "input_tokens_total", "output_tokens_total", "num_gpus",
    "max_concurrent_requests", "good_requests", "energy_gpus", "num_warmups", "client_processes",
)  # fmt: skip
SERVE_BOOL: tuple[str, ...] = ("slo_met", "client_limited")
SERVE_STR: tuple[str, ...] = (
    "param_dataset", "param_endpoint", "param_server_model", "output_tokens_source", "client_limited_reason",
    "sweep", "scenario", "slo_preset", "imported_from", "input_tokens_source", "slo_rule",
)  # fmt: skip
# Fields holding an object (name -> seconds); the schema must type them as dict[str, float] before they join
# SERVE_FIELDS (bench.results.schema._field_type knows only clock_event_shares so far).
SERVE_DICT: dict[str, str] = {
    "latency_percentiles_s": "serve: the percentiles asked with --metric-percentiles beyond p90 and p99, e.g. "
    '{"ttft_p95": 0.12}, seconds',
}
