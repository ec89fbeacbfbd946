"""The streaming client against the stub: payloads, SSE parsing, timings and every failure mode.

Timing checks are causal, on the one perf_counter clock both sides share: the client sends before
the stub receives and gets a chunk after the stub wrote it, so the client's TTFT is at least the
stub's. No upper bound on a time is asserted (the host is shared).
"""

from __future__ import annotations

import asyncio
import socket
import time

import aiohttp
import pytest

from bench.serve.client import Endpoint, ServerNotReady, SseParser, ready_check, send_request
from bench.serve.model import RequestSpec
from tests.serve.conftest import endpoint_of

SPEC = RequestSpec(index=7, prompt="one two three four five", input_tokens=99, max_tokens=5)


def _send(endpoint: Endpoint, spec: RequestSpec = SPEC, timeout_s: float = 10.0):
    """One request through send_request; returns (result, t0) with t0 the perf_counter origin."""

    async def go():
        t0 = time.perf_counter()
        async with aiohttp.ClientSession() as session:
            return await send_request(session, endpoint, spec, t0=t0, scheduled_s=0.0, timeout_s=timeout_s), t0

    return asyncio.run(go())


STREAM = (
    b': keep-alive\r\n\r\ndata: {"choices": [{"text": "a"}]}\r\n\r\n\n'
    b'event: message\ndata:{"choices": [{"text": "b", "finish_reason": "length"}]}\n\n'
    b'data: {"choices": [], "usage": {"completion_tokens": 2}}\n\ndata: [DONE]'
)


def test_sse_parser_is_indifferent_to_how_bytes_are_split():
    whole = SseParser().feed(STREAM) + SseParser().flush()
    expected = ['{"choices": [{"text": "a"}]}', '{"choices": [{"text": "b", "finish_reason": "length"}]}',
                '{"choices": [], "usage": {"completion_tokens": 2}}', "[DONE]"]  # fmt: skip
    for cut in range(1, len(STREAM)):
        p = SseParser()
        got = p.feed(STREAM[:cut]) + p.feed(STREAM[cut:]) + p.flush()
        assert got == expected, cut
    bytewise = SseParser()
    assert [x for i in range(len(STREAM)) for x in bytewise.feed(STREAM[i : i + 1])] + bytewise.flush() == expected
    assert whole == expected[:3]  # the last line had no newline: only flush() gives it


def test_payload_of_completions_and_chat(stub):
    server = stub(output_len=2)
    _send(endpoint_of(server))
    _send(Endpoint(server.base_url, "/v1/chat/completions", api_key="k"), RequestSpec(1, "hi", 1, 3, ignore_eos=True))
    first, second = (r.body for r in server.requests)
    assert first == {"model": "stub-model", "prompt": SPEC.prompt, "max_tokens": 5, "temperature": 0.0,
                     "stream": True, "stream_options": {"include_usage": True}}  # fmt: skip
    assert second["messages"] == [{"role": "user", "content": "hi"}] and second["ignore_eos"] is True
    assert "model" not in second and "prompt" not in second


def test_chat_with_token_ids_needs_their_text():
    ep = Endpoint("http://127.0.0.1:1", "/v1/chat/completions/")
    assert ep.chat and ep.url == "http://127.0.0.1:1/v1/chat/completions/"
    with pytest.raises(ValueError, match="token-id prompt"):
        ep.payload(RequestSpec(0, [1, 2], 2, 4))
    assert ep.payload(RequestSpec(0, [1, 2], 2, 4, prompt_text="x y"))["messages"][0]["content"] == "x y"
    assert Endpoint("http://h/", "v1/completions").url == "http://h/v1/completions"
    res, _ = _send(ep, RequestSpec(3, [1, 2], 2, 4))  # recorded, not raised
    assert not res.ok and res.error.startswith("not sent: request 3: a token-id prompt") and res.index == 3


def test_timings_of_a_stream(stub):
    server = stub(ttft_s=0.1, itl_s=0.02, output_len=5)
    res, t0 = _send(endpoint_of(server))
    rec = server.requests[0]
    assert res.ok and res.error is None and res.http_status == 200 and res.index == 7
    sent = t0 + res.sent_s
    assert sent <= rec.received
    assert len(res.chunk_times_s) == 5
    for mine, theirs in zip(res.chunk_times_s, rec.chunk_times, strict=True):
        assert sent + mine >= theirs  # a chunk arrives after it was written
    assert res.ttft_s == res.chunk_times_s[0] >= rec.ttft_s >= 0.1
    assert res.ttft_s <= res.e2el_s and res.chunk_times_s[-1] <= res.e2el_s
    assert res.e2el_s >= rec.done - rec.received >= 0.1 + 4 * 0.02
    assert res.chunk_times_s == sorted(res.chunk_times_s)
    assert (res.output_tokens, res.output_tokens_source) == (5, "usage")
    assert res.input_tokens == 5  # the stub's usage (5 words), not the dataset's 99
    assert res.generated_text == " tok" * 5
    assert res.tpot_s == pytest.approx((res.e2el_s - res.ttft_s) / 4)
    assert len(res.itl_s) == 4 and res.done_s >= res.sent_s + res.e2el_s


def test_chunks_of_several_tokens_and_usage(stub):
    server = stub(output_len=7, tokens_per_chunk=3, keepalive=True)
    res, _ = _send(endpoint_of(server))
    assert res.ok and len(res.chunk_times_s) == 3  # 3 + 3 + 1 tokens
    assert (res.output_tokens, res.output_tokens_source) == (7, "usage")
    assert len(res.itl_s) == 2


def test_without_usage_tokens_are_counted(stub):
    server = stub(output_len=4, tokens_per_chunk=2, send_usage=False)
    res, _ = _send(endpoint_of(server))
    assert res.ok and (res.output_tokens, res.output_tokens_source) == (2, "counted")  # chunks, not tokens
    assert res.input_tokens == 99  # the dataset's count stands


def test_chat_ttft_counts_the_role_chunk_as_vllm_does(stub):
    # vLLM: any event with choices is a chunk, the role delta first (it comes before the stub's 0.1 s TTFT)
    server = stub(ttft_s=0.1, output_len=3)
    res, _ = _send(endpoint_of(server, "/v1/chat/completions"))
    assert res.ok and len(res.chunk_times_s) == 4 and res.ttft_s == res.chunk_times_s[0]
    assert res.chunk_times_s[1] >= 0.1  # the first token came after the stub's wait
    assert len(res.itl_s) == 3 and res.e2el_s == res.chunk_times_s[-1]  # E2EL: the last chunk, not [DONE]
    assert res.generated_text == " tok" * 3 and (res.output_tokens, res.output_tokens_source) == (3, "usage")


def test_without_usage_chat_counts_only_chunks_with_text(stub):
    server = stub(output_len=3, send_usage=False)
    res, _ = _send(endpoint_of(server, "/v1/chat/completions"))
    assert res.ok and len(res.chunk_times_s) == 4  # the role delta is a chunk for the timings
    assert (res.output_tokens, res.output_tokens_source) == (3, "counted")  # but not a token
    assert res.input_tokens_source == "nominal"


@pytest.mark.parametrize(
    ("settings", "reason", "status"),
    [
        ({"status": 500}, "HTTP 500: stub says 500", 500),
        ({"status": 404, "error_text": "x" * 300 + "\nmore"}, "HTTP 404: " + "x" * 200, 404),
        ({"truncate_after": 2}, "stream ended early", 200),
        ({"error_in_stream": True}, "server error in stream: stub failure mid-stream", 200),
        ({"plain_json": True}, "no server-sent events in the answer (does the server stream?)", 200),
    ],
)
def test_failures_are_recorded_not_raised(stub, settings, reason, status):
    res, _ = _send(endpoint_of(stub(output_len=4, **settings)))
    assert not res.ok and res.error == reason and res.http_status == status
    assert res.e2el_s is None or res.e2el_s == res.chunk_times_s[-1]


def test_a_finish_reason_without_done_is_complete(stub):
    res, _ = _send(endpoint_of(stub(output_len=3, send_done=False)))
    assert res.ok and len(res.chunk_times_s) == 3 and res.output_tokens == 3
    assert res.e2el_s >= res.chunk_times_s[-1]


def test_every_kth_request_429(stub):
    server = stub(fail_every=2, output_len=2)
    results = [_send(endpoint_of(server))[0] for _ in range(4)]
    assert [r.ok for r in results] == [True, False, True, False]
    assert results[1].error == "HTTP 429: rate limited: too many requests, slow down"


def test_truncated_stream_keeps_what_it_got(stub):
    res, _ = _send(endpoint_of(stub(output_len=5, truncate_after=2)))
    assert res.error == "stream ended early" and len(res.chunk_times_s) == 2 and res.ttft_s is not None


def test_connection_reset_mid_stream(stub):
    res, _ = _send(endpoint_of(stub(output_len=5, reset_after=2)))
    assert not res.ok and res.error.startswith("connection reset")


def test_timeout(stub):
    res, _ = _send(endpoint_of(stub(hang=True)), timeout_s=0.3)
    assert not res.ok and res.error == "timed out after 0.3 s" and res.done_s >= res.sent_s + 0.3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused():
    res, _ = _send(Endpoint(f"http://127.0.0.1:{_free_port()}"))
    assert not res.ok and res.error.startswith("connection refused") and "\n" not in res.error


def test_ready_check(stub):
    server = stub()
    assert ready_check(endpoint_of(server), 5.0)["data"][0]["id"] == "stub-model"
    url = f"http://127.0.0.1:{_free_port()}"
    start = time.monotonic()
    with pytest.raises(ServerNotReady) as e:
        ready_check(Endpoint(url), 0.6)
    assert time.monotonic() - start >= 0.6
    assert str(e.value).startswith(f"{url}/v1/models: not ready within 0.6 s") and "\n" not in str(e.value)


def test_ready_check_reports_an_http_error(stub):
    server = stub()
    with pytest.raises(ServerNotReady, match="HTTP 404"):
        ready_check(Endpoint(server.base_url + "/nothing"), 0.3)
