"""A stub OpenAI-compatible streaming server for the serve tests (aiohttp.web, 127.0.0.1, a background thread).

It streams `output_len` tokens (or the request's max_tokens) as `tokens_per_chunk` tokens a chunk: the first
after `ttft_s`, the others `itl_s` apart; then a `usage` block (when asked for and `send_usage`) and `data:
[DONE]`. Failure modes: every request answered `status`; every k-th request 429 (`fail_every`), with
`error_text` as the body where given; the stream ended cleanly after k chunks with no finish_reason and no
[DONE] (`truncate_after`); the connection dropped after k chunks (`reset_after`); an error object in the
stream (`error_in_stream`); a hang before the first byte (`hang`); one JSON
body instead of a stream (`plain_json`). `max_concurrency` makes the server itself
take at most that many requests at once (the rest wait inside the server).

Every request is recorded (StubRequest) with perf_counter times (the same clock as the client's on this
machine): when the handler got it, when it got a server slot, when the first chunk was handed to the socket,
when [DONE] was (each read just before the write). The stub's own TTFT of a request is first_chunk - received.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

HANG_S = 30.0  # a hung request waits this long at most (the server's shutdown cancels it sooner)


@dataclass
class StubRequest:
    n: int  # 1-based arrival order
    path: str
    body: dict[str, Any]
    received: float  # perf_counter readings
    started: float | None = None
    first_chunk: float | None = None
    done: float | None = None
    chunk_times: list[float] = field(default_factory=list)
    authorization: str | None = None  # the Authorization header it came with

    @property
    def ttft_s(self) -> float | None:
        return None if self.first_chunk is None else self.first_chunk - self.received


@dataclass
class StubServer:
    ttft_s: float = 0.0
    itl_s: float = 0.0
    output_len: int | None = None  # None: the request's max_tokens
    send_usage: bool = True
    tokens_per_chunk: int = 1
    fail_every: int = 0
    status: int = 200
    error_text: str | None = None  # the body of an error answer (default: a short one)
    truncate_after: int | None = None
    reset_after: int | None = None
    error_in_stream: bool = False
    hang: bool = False
    keepalive: bool = False  # a blank comment line between chunks
    send_done: bool = True  # False: end after the finish_reason and usage with no `data: [DONE]`
    plain_json: bool = False  # answer one JSON body, not a stream (a server that ignores `stream`)
    max_concurrency: int | None = None
    model: str = "stub-model"
    models_status: int = 200  # GET /v1/models answers this (e.g. 401: a key is needed)
    models_asked: list[str | None] = field(default_factory=list)  # the Authorization of each GET /v1/models
    requests: list[StubRequest] = field(default_factory=list)
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> StubServer:
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="stub-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(10.0):
            raise RuntimeError("stub server did not start within 10 s")
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(10.0)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())
        self._loop.close()

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        self._sem = asyncio.Semaphore(self.max_concurrency) if self.max_concurrency else None
        app = web.Application()
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/completions", self._completions)
        app.router.add_post("/v1/chat/completions", self._completions)
        runner = web.AppRunner(app, shutdown_timeout=0.5, handler_cancellation=True, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = runner.addresses[0][1]
        self._ready.set()
        await self._stopping.wait()
        await runner.cleanup()

    async def _models(self, request: web.Request) -> web.Response:
        self.models_asked.append(request.headers.get("Authorization"))
        if self.models_status != 200:
            return web.Response(status=self.models_status, text=f"stub says {self.models_status}")
        return web.json_response({"object": "list", "data": [{"id": self.model, "object": "model"}]})

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        received = time.perf_counter()  # before the body is read: the stub's own parsing is its TTFT
        rec = StubRequest(len(self.requests) + 1, request.path, await request.json(), received,
                          authorization=request.headers.get("Authorization"))  # fmt: skip
        self.requests.append(rec)
        if self.fail_every and rec.n % self.fail_every == 0:
            return web.Response(status=429, text=self.error_text or "rate limited: too many requests, slow down")
        if self.status != 200:
            return web.Response(status=self.status, text=self.error_text or f"stub says {self.status}")
        async with self._sem if self._sem else contextlib.nullcontext():
            rec.started = time.perf_counter()
            if self.hang:
                await asyncio.sleep(HANG_S)
            if self.plain_json:
                return web.json_response({"choices": [{"index": 0, "text": " tok", "finish_reason": "length"}]})
            return await self._stream(request, rec)

    async def _stream(self, request: web.Request, rec: StubRequest) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        chat = rec.path.endswith("/chat/completions")
        n_out = self.output_len if self.output_len is not None else int(rec.body.get("max_tokens", 16))
        if chat:  # the role delta comes first and carries no content (vLLM's TTFT counts it: a chunk with choices)
            await resp.write(_sse({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}))
        if self.ttft_s:
            await asyncio.sleep(self.ttft_s)
        n_chunks = math.ceil(n_out / self.tokens_per_chunk)
        for i in range(n_chunks):
            if i and self.itl_s:
                await asyncio.sleep(self.itl_s)
            if self.truncate_after is not None and i >= self.truncate_after:
                await resp.write_eof()
                return resp
            if self.reset_after is not None and i >= self.reset_after:
                assert request.transport is not None
                request.transport.close()
                return resp
            k = min(self.tokens_per_chunk, n_out - i * self.tokens_per_chunk)
            rec.chunk_times.append(time.perf_counter())  # before the write: the client cannot see it sooner
            await resp.write(_sse(_chunk(" tok" * k, chat, "length" if i == n_chunks - 1 else None)))
            rec.first_chunk = rec.first_chunk or rec.chunk_times[0]
            if self.keepalive:
                await resp.write(b": keep-alive\n\n")
        if self.error_in_stream:
            await resp.write(_sse({"error": {"message": "stub failure mid-stream", "code": 500}}))
        if self.send_usage and (rec.body.get("stream_options") or {}).get("include_usage"):
            usage = {"prompt_tokens": _prompt_tokens(rec.body), "completion_tokens": n_out}
            await resp.write(_sse({"choices": [], "usage": {**usage, "total_tokens": sum(usage.values())}}))
        rec.done = time.perf_counter()
        if self.send_done:
            await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp


def _chunk(text: str, chat: bool, finish: str | None) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "finish_reason": finish}
    if chat:
        choice["delta"] = {"content": text}
    else:
        choice["text"] = text
    return {"id": "cmpl-stub", "object": "chat.completion.chunk" if chat else "text_completion", "choices": [choice]}


def _prompt_tokens(body: dict[str, Any]) -> int:
    """Token ids counted, or words of a text prompt (the stub's own tokenizer)."""
    prompt = body.get("prompt")
    if isinstance(prompt, list):
        return len(prompt)
    if isinstance(prompt, str):
        return len(prompt.split())
    return sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))


def _sse(event: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(event).encode() + b"\n\n"
