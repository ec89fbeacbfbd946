"""Metrics against hand-computed values: results built by hand, no server, no clock."""

from __future__ import annotations

import math

import pytest

from bench.serve.load import LoadPointRun, observed_max_concurrent
from bench.serve.metrics import DEFINITIONS, distribution, format_block, is_good, parse_goodput, summarize
from bench.serve.model import LoadSpec, RequestResult, RequestSpec, Slo
from bench.serve.selfcheck import Verdict, verdict


def _ok(index, sent, chunks, e2el, out, source="usage", inp=10, scheduled=0.0):
    return RequestResult(
        index=index, scheduled_s=scheduled, sent_s=sent, ok=True, http_status=200, ttft_s=chunks[0], e2el_s=e2el,
        chunk_times_s=list(chunks), input_tokens=inp, output_tokens=out, output_tokens_source=source,
        done_s=sent + e2el,
    )  # fmt: skip


def _results():
    return [
        _ok(0, 0.0, [0.1, 0.2, 0.3, 0.4], 0.4, 4),  # TPOT 0.3/3 = 0.1; ITL 0.1 0.1 0.1
        _ok(1, 0.5, [0.2, 0.25, 0.5], 0.5, 5, scheduled=0.25),  # chunks of several tokens: TPOT 0.3/4 = 0.075
        _ok(2, 1.0, [0.3], 0.3, 1, source="counted", scheduled=0.5),  # one token: no TPOT
        RequestResult(index=3, scheduled_s=1.0, sent_s=1.5, error="HTTP 429: slow down", http_status=429, done_s=1.6),
    ]


def _run(results, duration=2.0, **kw):
    return LoadPointRun(results, duration, "2026-01-01T00:00:00+00:00", 0.0, duration, 2, **kw)


def test_summary_matches_hand_computed_values():
    s = summarize(_run(_results()), LoadSpec(num_prompts=4, max_concurrency=2), percentiles=(50.0, 99.0))
    assert (s.completed, s.failed) == (3, 1)
    assert (s.input_tokens, s.output_tokens) == (30, 10)
    assert s.output_tokens_source == "mixed"
    assert s.request_throughput == pytest.approx(1.5)  # 3 completed / 2 s
    assert s.output_throughput == pytest.approx(5.0)  # 10 tokens / 2 s
    assert s.total_token_throughput == pytest.approx(20.0)  # (30 + 10) / 2 s
    assert s.ttft.n == 3 and s.ttft.mean == pytest.approx(0.2) and s.ttft.median == pytest.approx(0.2)
    assert s.ttft.std == pytest.approx(math.sqrt(0.02 / 3))  # population std of 0.1 0.2 0.3
    assert s.ttft.percentiles[99.0] == pytest.approx(0.298)  # linear: 0.2 + 0.98 * 0.1
    assert s.tpot.n == 2 and s.tpot.mean == pytest.approx(0.0875)
    assert s.tpot.percentiles[99.0] == pytest.approx(0.075 + 0.99 * 0.025)
    assert s.itl.n == 5 and s.itl.mean == pytest.approx(0.12)  # pooled: 0.1 0.1 0.1 0.05 0.25
    assert s.itl.median == pytest.approx(0.1)
    assert s.itl.percentiles[99.0] == pytest.approx(0.1 + 0.96 * 0.15)
    assert s.e2el.mean == pytest.approx(0.4)
    assert s.queue.n == 4  # failed requests waited too
    assert s.queue.mean == pytest.approx((0 + 0.25 + 0.5 + 0.5) / 4)
    assert s.goodput is None and s.good_requests is None


def test_token_source_is_usage_or_counted_when_all_agree():
    res = _results()[:2]
    assert summarize(_run(res), LoadSpec()).output_tokens_source == "usage"
    counted = [_ok(0, 0.0, [0.1, 0.2], 0.2, 2, source="counted")]
    assert summarize(_run(counted), LoadSpec()).output_tokens_source == "counted"


def test_goodput_counts_requests_meeting_every_bound():
    res = _results()
    s = summarize(_run(res), LoadSpec(), slo=Slo(ttft_s=0.25, tpot_s=0.09))
    # r0: TPOT 0.1 > 0.09; r1: TTFT 0.2, TPOT 0.075 good; r2: TTFT 0.3 > 0.25; r3 failed
    assert s.good_requests == 1 and s.goodput == pytest.approx(0.5)
    s = summarize(_run(res), LoadSpec(), slo=Slo(ttft_s=0.35))
    assert s.good_requests == 3  # the one-token request counts: its TPOT is 0 for goodput (vLLM's rule)
    s = summarize(_run(res), LoadSpec(), slo=Slo(e2el_s=0.35))
    assert s.good_requests == 1


def test_goodput_bound_is_inclusive():
    r = _ok(0, 0.0, [0.25, 0.5, 0.75, 1.0], 1.0, 4)  # TPOT (1.0 - 0.25) / 3 = 0.25 exactly in binary
    assert is_good(r, parse_goodput(["ttft:250", "tpot:250", "e2el:1000"]))
    assert not is_good(r, parse_goodput(["tpot:249.9"]))


def test_empty_load_point_has_no_statistics():
    s = summarize(_run([], duration=0.0), LoadSpec())
    assert s.completed == 0 and s.request_throughput == 0.0
    assert s.ttft == distribution([]) and s.ttft.mean is None and s.ttft.percentiles == {}
    assert "n/a" in format_block(s)


def test_parse_goodput():
    assert parse_goodput(["ttft:200", "tpot:50"]) == Slo(ttft_s=0.2, tpot_s=0.05)
    assert parse_goodput(["ttft:200 e2el:1500"]) == Slo(ttft_s=0.2, e2el_s=1.5)
    for bad in (["itl:5"], ["ttft"], ["ttft:abc"], ["ttft:-1"], ["ttft:inf"], []):
        with pytest.raises(ValueError) as e:
            parse_goodput(bad)
        assert "\n" not in str(e.value) and "goodput" in str(e.value)


def test_format_block_reads_like_vllms():
    s = summarize(_run(_results()), LoadSpec(max_concurrency=4), slo=Slo(ttft_s=0.25))
    text = format_block(s, ("ttft", "tpot", "itl", "e2el"), num_gpus=2)
    lines = text.splitlines()
    assert lines[0] == "============ Serving Benchmark Result ============" and lines[-1] == "=" * 50
    for label in ("Successful requests:", "Benchmark duration (s):", "Request throughput (req/s):",
                  "Output token throughput (tok/s):", "Total Token throughput (tok/s):", "Request goodput (req/s):",
                  "Maximum request concurrency:"):  # fmt: skip
        assert any(line.startswith(label) for line in lines), label
    assert "---------------Time to First Token----------------" in lines
    assert "-----Time per Output Token (excl. 1st token)------" in lines
    assert "---------------Inter-token Latency----------------" in lines
    assert "----------------End-to-end Latency----------------" in lines
    assert "P99 TTFT (ms):                           298.00" in lines
    assert "Mean TPOT (ms):                          87.50" in lines
    assert "Output tok/s/user (1/median TPOT):       11.43" in lines  # 1 / 0.0875
    assert "Output tok/s per GPU:                    2.50" in lines  # 5 tok/s / 2
    assert "Output tokens: mixed: the server's usage where sent, else counted by the client" in lines
    assert DEFINITIONS in lines


def test_format_block_leaves_out_what_was_not_asked():
    s = summarize(_run(_results()), LoadSpec())
    text = format_block(s)
    assert "goodput" not in text and "End-to-end" not in text and "per GPU" not in text
    assert "Maximum request concurrency" not in text
    with pytest.raises(ValueError, match="queue"):
        format_block(s, ("queue",))


def test_client_limited_rule():
    assert verdict(0.004, [0.5], 1.0) == Verdict()
    v = verdict(0.006, [0.7], 1.0)
    assert v.client_limited and "lag p99 6.0 ms > 5 ms" in v.client_limited_reason
    assert "more --client-processes" in v.client_limited_reason and not v.contended
    v = verdict(0.001, [0.2, 0.95], 1.0)  # the busiest process counts
    assert v.client_limited and "CPU 95% of a core" in v.client_limited_reason
    v = verdict(0.05, [0.2], 1.0)  # late but hardly busy: starved by the host, which is not the client's limit
    assert not v.client_limited and v.client_limited_reason is None
    assert v.contended and "used only 20% of a core: other processes on this host" in v.contention_reason
    s = summarize(_run(_results(), client_lag_p99_s=0.01, client_cpu_per_process_s=[0.1]), LoadSpec())
    assert s.contended and not s.client_limited and "lag" in s.contention_reason  # 0.1 s CPU of 2 s: 5%
    assert "Host busy (contended):" in format_block(s) and "Client limited:" not in format_block(s)
    s = summarize(_run(_results(), client_lag_p99_s=0.01, client_cpu_per_process_s=[1.9]), LoadSpec())
    assert s.client_limited and not s.contended and "Client limited:" in format_block(s)  # 95% of a core


def test_max_concurrent_from_send_and_done_times():
    def r(sent, done, ok=True):
        return RequestResult(index=0, scheduled_s=0.0, sent_s=sent, done_s=done, ok=ok, e2el_s=done - sent)

    assert observed_max_concurrent([r(0, 1), r(0.5, 2), r(0.7, 0.8), r(1.5, 3)]) == 3
    assert observed_max_concurrent([r(0, 1), r(1, 2), r(2, 3)]) == 1  # back to back: never two at once
    assert observed_max_concurrent([r(0, 1), r(0.5, 2, ok=False), r(0.7, 0.8)]) == 2  # vLLM: successful only
    assert observed_max_concurrent([]) == 0


def test_summary_of_a_real_load_point(stub):
    from bench.serve.load import run_load_point
    from tests.serve.conftest import endpoint_of

    server = stub(ttft_s=0.1, itl_s=0.02, output_len=5)
    requests = [RequestSpec(i, "one two three", 3, 5) for i in range(8)]
    run = run_load_point(endpoint_of(server), requests, LoadSpec(max_concurrency=4), request_timeout_s=10)
    s = summarize(run, LoadSpec(max_concurrency=4), percentiles=(50.0,), slo=Slo(ttft_s=60.0))
    assert (s.completed, s.failed, s.output_tokens, s.input_tokens) == (8, 0, 40, 24)
    assert s.output_tokens_source == "usage" and s.max_concurrent_requests == 4
    assert s.ttft.n == 8 and s.ttft.mean >= 0.1  # never less than the stub's own TTFT
    assert s.itl.n == 8 * 4 and s.tpot.n == 8 and s.tpot.percentiles[50.0] == s.tpot.median
    assert s.e2el.median >= s.ttft.median + 4 * 0.02
    assert s.request_throughput == pytest.approx(8 / run.duration_s)
    assert s.good_requests == 8 and s.goodput == pytest.approx(s.request_throughput)
    assert s.queue.n == 8 and s.queue.percentiles[50.0] >= 0.0
