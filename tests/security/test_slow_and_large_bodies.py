"""Oversized and slow bodies against the real local server: refused, and never a thread held for ever."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest

from lifecycle.bootstrap import build
from lifecycle.local.server import LocalServer
from lifecycle.local.stack import worker_routes
from lifecycle.sandbox import Sandbox
from lifecycle.services.ingress import MAX_BODY_BYTES
from lifecycle.settings import Settings
from tests.fakes.marketplace import InProcessMarketplaceApi
from tests.fakes.queue import FakeQueue
from tests.fakes.store import FakeSubscriptionStore

SERVER_TIMEOUT = 1.0  # the server's own deadline for a body
CLIENT_PATIENCE = 15.0  # far longer: if the server hung, the client would see no answer at all


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[LocalServer, Sandbox]]:
    with Sandbox(auto_accept_seconds=None) as sandbox:
        settings = Settings.from_env(sandbox.settings_env() | {"WEBHOOK_ENQUEUE_DELAY_SECONDS": "0"})
        api = InProcessMarketplaceApi(sandbox.marketplace)
        worker = build(settings, store=FakeSubscriptionStore(), queue=FakeQueue(), api=api, webhook_api=api)
        local = LocalServer(worker_routes(worker), port=0, timeout=SERVER_TIMEOUT).start()
        yield local, sandbox
        local.stop()


def request_head(sandbox: Sandbox, headers: dict[str, str]) -> bytes:
    lines = ["POST /api/marketplace/webhook HTTP/1.1", "Host: 127.0.0.1",
             f"Authorization: Bearer {sandbox.entra.webhook_token()}", "Content-Type: application/json"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def status_of(client: socket.socket) -> int:
    client.settimeout(CLIENT_PATIENCE)
    head = client.recv(4096)
    assert head, "the server closed without an answer"
    return int(head.split(b" ", 2)[1])


def test_a_body_announced_over_the_limit_is_refused_before_it_is_read(server: tuple[LocalServer, Sandbox]) -> None:
    local, sandbox = server
    with socket.create_connection(("127.0.0.1", local.port)) as client:
        client.sendall(request_head(sandbox, {"Content-Length": str(MAX_BODY_BYTES + 1)}))
        assert status_of(client) == 413


def test_a_chunked_body_growing_over_the_limit_is_refused(server: tuple[LocalServer, Sandbox]) -> None:
    local, sandbox = server
    with socket.create_connection(("127.0.0.1", local.port)) as client:
        client.sendall(request_head(sandbox, {"Transfer-Encoding": "chunked"}))
        chunk = b"x" * 16384
        for _ in range(MAX_BODY_BYTES // len(chunk) + 1):
            client.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        assert status_of(client) == 413


def test_a_body_that_stops_arriving_is_answered_408(server: tuple[LocalServer, Sandbox]) -> None:
    local, sandbox = server
    with socket.create_connection(("127.0.0.1", local.port)) as client:
        client.sendall(request_head(sandbox, {"Content-Length": "1000"}) + b'{"id": ')
        assert status_of(client) == 408


def test_a_body_trickled_a_byte_at_a_time_is_cut_off_at_the_deadline(server: tuple[LocalServer, Sandbox]) -> None:
    """Each byte arrives well inside the per-read timeout; only a deadline for the whole body ends it."""
    local, sandbox = server
    body = json.dumps({"id": "x" * 400}).encode()
    with socket.create_connection(("127.0.0.1", local.port)) as client:
        client.sendall(request_head(sandbox, {"Content-Length": str(len(body))}))
        client.setblocking(False)
        answered = b""
        for byte in body:  # about 400 bytes at 20 ms: 8 s, far past the server's 1 s deadline
            try:
                client.send(bytes([byte]))
            except OSError:
                break  # the server closed the connection on us
            try:
                answered = client.recv(4096)
            except BlockingIOError:
                time.sleep(0.02)  # pacing the trickle, not waiting for a result
                continue
            break
        client.setblocking(True)
        answered = answered or client.recv(4096)
    assert answered.split(b" ", 2)[1] == b"408"
