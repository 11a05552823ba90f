"""A client that vanishes mid-request is weather: neither server prints a traceback for it.

Found by the soak: a worker SIGKILLed with a kept-alive connection to the sandbox made
socketserver print a traceback (in our worker's log, a line that is not JSON, read as an
unhandled exception).
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest

from lifecycle.local.server import LocalServer
from lifecycle.sandbox import Sandbox


def reset_kept_alive(port: int) -> None:
    """One request on a kept-alive connection, then a reset (SO_LINGER 0), as a killed process leaves it.

    Once the answer has come, the server's thread is reading the next request: the reset hits it there.
    """
    with socket.create_connection(("127.0.0.1", port)) as client:
        client.sendall(b"GET /api/nothing-here HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert client.recv(1)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the server never finished with the connection"
        time.sleep(0.01)


def test_the_sandbox_ignores_a_client_reset_kept_alive(capfd: pytest.CaptureFixture[str]) -> None:
    with Sandbox() as sandbox:
        port = urlsplit(sandbox.api_url).port
        assert port is not None
        reset_kept_alive(port)
        wait_until(lambda: sandbox.api_open_connections == 0)
    assert "Traceback" not in capfd.readouterr().err


def test_the_local_server_ignores_a_client_reset_kept_alive(capfd: pytest.CaptureFixture[str]) -> None:
    local = LocalServer([], port=0).start()
    try:
        reset_kept_alive(local.port)
        wait_until(lambda: local.open_connections == 0)
    finally:
        local.stop()
    assert "Traceback" not in capfd.readouterr().err
