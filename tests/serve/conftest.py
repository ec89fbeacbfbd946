"""Fixtures of the serve tests: stub servers started on 127.0.0.1 and always stopped."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bench.serve.client import Endpoint
from tests.serve.stub import StubServer


@pytest.fixture
def stub() -> Iterator[Callable[..., StubServer]]:
    """stub(**settings) starts a StubServer for this test; every one started is stopped after it."""
    servers: list[StubServer] = []

    def start(**settings: Any) -> StubServer:
        server = StubServer(**settings).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__(None, None, None)


def endpoint_of(server: StubServer, path: str = "/v1/completions") -> Endpoint:
    return Endpoint(server.base_url, path, model="stub-model")
