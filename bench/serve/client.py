"""One streaming request to an OpenAI-compatible server, timed chunk by chunk; and the ready check.

A request goes out with `stream: true` and `stream_options: {"include_usage": true}`, temperature 0,
`max_tokens` from the dataset and vLLM's extra field `ignore_eos` when asked. The reply is
server-sent events: `data: {json}` lines, blank keep-alive lines and `: comment` lines, ending with
`data: [DONE]`. Lines may arrive split across network reads, so bytes are buffered up to each newline.

Timings follow vLLM's request functions (vllm/benchmarks/lib/endpoint_request_func.py): every event
with a non-empty `choices` list is a chunk (a chat's role delta and a chunk with empty text count, the
trailing usage event with `choices: []` does not); TTFT is the first chunk's arrival minus the send
time, ITL the gaps between chunks, and E2EL ends at the last chunk (not at `[DONE]`). Output tokens
come from the final `usage` block where the server sends one (source "usage"), else they are the
chunks with non-empty text counted (source "counted", exact only for servers that send one token per
chunk); input tokens from `usage.prompt_tokens` (source "usage"), else the dataset's count ("nominal").
One deliberate difference: vLLM calls a stream with one chunk a success; tokenbench also wants a
finish_reason or `[DONE]`, so a stream cut short is a failure, not a short success.

Nothing here raises for a failed request: HTTP errors, 429, timeouts, a truncated stream, an error
object inside the stream and refused or reset connections all become a RequestResult with ok=False
and a one-line `error`.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench.serve.model import RequestResult, RequestSpec

ERROR_BODY_CHARS = 200  # of an HTTP error's body, in the one-line reason


class ServerNotReady(Exception):
    """The server did not answer GET /v1/models with 200 in time, or refused it (one-line message)."""


REFUSALS = (401, 403, 404)  # a definite no from GET /v1/models: waiting longer will not change it


@dataclass(frozen=True)
class Endpoint:
    """Where requests go; chat when the path ends with /chat/completions."""

    base_url: str  # e.g. http://127.0.0.1:8000
    endpoint: str = "/v1/completions"
    model: str | None = None  # the model name sent in each request (None: omitted, the server's default)
    api_key: str | None = None  # sent as a bearer token

    @property
    def chat(self) -> bool:
        return self.endpoint.rstrip("/").endswith("/chat/completions")

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + "/" + self.endpoint.lstrip("/")

    @property
    def models_url(self) -> str:
        return self.base_url.rstrip("/") + "/v1/models"

    def headers(self) -> dict[str, str]:
        h = {"Content-Type": "application/json"}
        if self.api_key:
            h["Authorization"] = f"Bearer {self.api_key}"
        return h

    def payload(self, spec: RequestSpec) -> dict[str, Any]:
        """The JSON body for one request (greedy, streamed, usage asked for)."""
        body: dict[str, Any] = {
            "max_tokens": spec.max_tokens,
            "temperature": 0.0,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if self.model:
            body["model"] = self.model
        if spec.ignore_eos:
            body["ignore_eos"] = True  # vLLM's (and SGLang's) extra field: generate max_tokens whatever comes
        if self.chat:
            text = spec.prompt if isinstance(spec.prompt, str) else spec.prompt_text
            if text is None:
                raise ValueError(f"request {spec.index}: a token-id prompt without text cannot go to {self.endpoint}")
            body["messages"] = [{"role": "user", "content": text}]
        else:
            body["prompt"] = spec.prompt
        return body


class SseParser:
    """Server-sent events to their `data:` payloads, whatever way the bytes were split."""

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[str]:
        """The payloads of the complete `data:` lines in the bytes seen so far (blank and comment lines skipped)."""
        self._buf += data
        *lines, self._buf = self._buf.split(b"\n")
        return [p for p in map(_payload, lines) if p is not None]

    def flush(self) -> list[str]:
        """A last line that had no newline when the stream ended."""
        rest, self._buf = self._buf, b""
        p = _payload(rest)
        return [] if p is None else [p]


def _payload(line: bytes) -> str | None:
    text = line.decode("utf-8", errors="replace").strip()
    if not text.startswith("data:"):
        return None  # blank keep-alive, ": comment", "event:", "id:", "retry:"
    return text[5:].strip()


def _content(event: dict[str, Any], chat: bool) -> str | None:
    """The text a chunk carries (None: a chunk without content, e.g. the role or the usage)."""
    choices = event.get("choices") or []
    if not choices:
        return None
    choice = choices[0]
    text = (choice.get("delta") or {}).get("content") if chat else choice.get("text")
    return text or None


def _stream_error(event: dict[str, Any]) -> str | None:
    """The message of an error object sent inside the stream (vLLM, OpenAI and llama.cpp shapes)."""
    if "error" in event:
        err = event["error"]
        msg = err.get("message", err) if isinstance(err, dict) else err
        return f"server error in stream: {_one_line(str(msg))}"
    if event.get("object") == "error":
        return f"server error in stream: {_one_line(str(event.get('message', '')))}"
    return None


def _one_line(text: str, limit: int = ERROR_BODY_CHARS) -> str:
    return " ".join(text[:limit].split())


class _Stream:
    """The state of one response as its events arrive (times are absolute perf_counter readings)."""

    def __init__(self, chat: bool):
        self.chat = chat
        self.chunk_times: list[float] = []  # every event with choices
        self.text: list[str] = []
        self.content_chunks = 0  # chunks with non-empty text
        self.usage: dict[str, Any] | None = None
        self.finished = False  # a finish_reason was seen
        self.done_at: float | None = None  # [DONE] arrived
        self.error: str | None = None
        self.events = 0

    def event(self, payload: str, now: float) -> None:
        self.events += 1
        if payload == "[DONE]":
            self.done_at = now
            return
        try:
            event = json.loads(payload)
        except ValueError:
            self.error = f"bad JSON in stream: {_one_line(payload, 80)}"
            return
        if not isinstance(event, dict):
            return
        self.error = self.error or _stream_error(event)
        if event.get("choices"):  # vLLM's chunk: any event with choices, content or not
            self.chunk_times.append(now)
            if text := _content(event, self.chat):
                self.text.append(text)
                self.content_chunks += 1
        if any(c.get("finish_reason") for c in event.get("choices") or []):
            self.finished = True
        if isinstance(event.get("usage"), dict):
            self.usage = event["usage"]


async def send_request(
    session: aiohttp.ClientSession, endpoint: Endpoint, spec: RequestSpec, *, t0: float, scheduled_s: float,
    timeout_s: float,
) -> RequestResult:  # fmt: skip
    """Send one request now and time its stream; times relative to `t0` (perf_counter). Never raises
    for a failed request; cancelled, it returns the request failed "interrupted" with what it got."""
    try:
        body = endpoint.payload(spec)
    except ValueError as e:
        now = time.perf_counter() - t0
        return RequestResult(spec.index, scheduled_s, now, error=f"not sent: {e}", done_s=now)
    sent = time.perf_counter()
    res = RequestResult(index=spec.index, scheduled_s=scheduled_s, sent_s=sent - t0, input_tokens=spec.input_tokens)
    stream = _Stream(endpoint.chat)
    try:
        async with asyncio.timeout(timeout_s):
            await _exchange(session, endpoint, body, stream, res)
    except TimeoutError:
        res.error = f"timed out after {timeout_s:g} s"
    except aiohttp.ClientConnectorError as e:
        kind = "connection refused" if isinstance(e.os_error, ConnectionRefusedError) else "cannot connect"
        res.error = f"{kind}: {_one_line(str(e))}"
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, aiohttp.ClientOSError) as e:
        res.error = f"connection reset: {_one_line(str(e) or type(e).__name__)}"
    except aiohttp.ClientError as e:
        res.error = f"client error: {_one_line(str(e) or type(e).__name__)}"
    except asyncio.CancelledError as e:  # the load point was stopped (Ctrl-C) or ran past its deadline
        res.error = str(e.args[0]) if e.args and e.args[0] else "interrupted"
    _finish(res, stream, sent, t0, spec)
    return res


async def _exchange(
    session: aiohttp.ClientSession, endpoint: Endpoint, body: dict[str, Any], stream: _Stream, res: RequestResult
) -> None:
    async with session.post(endpoint.url, json=body, headers=endpoint.headers()) as resp:
        res.http_status = resp.status
        if resp.status != 200:
            text = await resp.text(errors="replace")
            res.error = f"HTTP {resp.status}: {_one_line(text)}"
            return
        parser = SseParser()
        async for data in resp.content.iter_any():
            now = time.perf_counter()
            for payload in parser.feed(data):
                stream.event(payload, now)
            if stream.error:
                return
        for payload in parser.flush():
            stream.event(payload, time.perf_counter())


def _finish(res: RequestResult, stream: _Stream, sent: float, t0: float, spec: RequestSpec) -> None:
    """Fill the result from the stream's state; decide ok or the reason it failed."""
    end = time.perf_counter()
    res.done_s = end - t0
    res.chunk_times_s = [t - sent for t in stream.chunk_times]
    res.generated_text = "".join(stream.text)
    if res.chunk_times_s:
        res.ttft_s = res.chunk_times_s[0]
    if res.error is None and stream.error:
        res.error = stream.error
    if res.error is None and stream.events == 0:
        res.error = "no server-sent events in the answer (does the server stream?)"
    if res.error is None and stream.done_at is None and not stream.finished:
        res.error = "stream ended early"
    usage = stream.usage or {}
    if isinstance(usage.get("completion_tokens"), int):
        res.output_tokens, res.output_tokens_source = usage["completion_tokens"], "usage"
    else:
        res.output_tokens, res.output_tokens_source = stream.content_chunks, "counted"
    if isinstance(usage.get("prompt_tokens"), int):
        res.input_tokens, res.input_tokens_source = usage["prompt_tokens"], "usage"
    if res.error is None and not res.chunk_times_s:
        res.error = "no chunk with choices in the stream (vLLM: never received a valid chunk)"
    if res.error is None:
        res.e2el_s = res.chunk_times_s[-1]  # vLLM: the last chunk with choices ends the request
        res.ok = True
    elif res.chunk_times_s:
        res.e2el_s = res.chunk_times_s[-1]  # what it got before failing


async def _models(endpoint: Endpoint, timeout_s: float) -> dict[str, Any]:
    """GET /v1/models until it answers 200 with JSON, or ServerNotReady when `timeout_s` has passed."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    async with aiohttp.ClientSession(headers=endpoint.headers()) as session:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ServerNotReady(f"{endpoint.models_url}: not ready within {timeout_s:g} s ({last})")
            try:
                async with session.get(endpoint.models_url, timeout=aiohttp.ClientTimeout(total=min(left, 5.0))) as r:
                    if r.status == 200:
                        answer = await r.json(content_type=None)
                        return answer if isinstance(answer, dict) else {"data": answer}
                    last = f"HTTP {r.status}: {_one_line(await r.text(errors='replace'), 80)}"
                    if r.status in REFUSALS:
                        raise ServerNotReady(f"{endpoint.models_url}: refused ({last})")
            except (aiohttp.ClientError, TimeoutError, ValueError) as e:
                last = _one_line(str(e) or type(e).__name__, 120)
            await asyncio.sleep(min(0.5, max(0.0, deadline - time.monotonic())))


def ready_check(endpoint: Endpoint, timeout_s: float) -> dict[str, Any]:
    """What GET {base_url}/v1/models answered (parsed JSON), polling until `timeout_s`; else ServerNotReady."""
    return asyncio.run(_models(endpoint, timeout_s))
