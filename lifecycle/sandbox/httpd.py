"""Loopback HTTP plumbing shared by the sandbox's servers (and the local runtime's).

`LoopbackHTTPServer` is the server class: 127.0.0.1 only, a thread per connection,
kept-alive connections closed on stop, disconnects kept out of the logs. The local
runtime's server (`lifecycle.local.server`) stands on it too: the sandbox must not lean on
the worker's code, the reverse is allowed. A `LoopbackServer` is a ThreadingHTTPServer bound to 127.0.0.1 (never another
interface), serving from a daemon thread, optionally over TLS. `JsonHandler` adds
the few helpers both servers need and keeps the default access log quiet.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOOPBACK = "127.0.0.1"
_DISCONNECTS = (ConnectionError, TimeoutError, ssl.SSLError)


class LoopbackHTTPServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer on 127.0.0.1 that remembers its open connections.

    Stopping can then end kept-alive ones too (their idle threads would otherwise wait out
    their timeouts). A client that vanishes mid-request (a timeout, a killed worker, a
    reset) is expected weather: socketserver would print a traceback for it on stderr,
    which in a log of JSON lines reads as a crash.
    """

    daemon_threads = True  # a stuck request must not keep the process alive after stop()

    def __init__(self, port: int, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__((LOOPBACK, port), handler)
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if not isinstance(error, _DISCONNECTS):
            self.report_error(error, request, client_address)

    def report_error(self, error: BaseException | None, request: Any, client_address: Any) -> None:
        """An error that is not a disconnect; by default socketserver's traceback on stderr."""
        super().handle_error(request, client_address)

    def open_connections(self) -> int:
        """Connections accepted and not yet finished with (kept-alive ones included)."""
        with self.connections_lock:
            return len(self.connections)

    def close_connections(self) -> None:
        with self.connections_lock:
            open_now, self.connections = list(self.connections), set()
        for connection in open_now:
            with contextlib.suppress(OSError):  # already gone
                connection.shutdown(socket.SHUT_RDWR)


class JsonHandler(BaseHTTPRequestHandler):
    """Request handler with JSON answers; subclasses implement do_GET etc."""

    protocol_version = "HTTP/1.1"  # keep-alive, as clients pool connections
    # Headers and body leave in two writes; with Nagle on, a kept-alive connection waits
    # for the client's delayed ACK (about 40 ms) before the body goes out.
    disable_nagle_algorithm = True
    server_version = "marketplace-sandbox"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests and `make run` would drown in access lines

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def send_body(
        self, status: int, body: bytes, content_type: str = "application/json", headers: dict[str, str] | None = None
    ) -> None:
        try:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if body:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body and self.command != "HEAD":
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            # The client gave up first (an injected delay outlasted its timeout): nothing to tell.
            self.close_connection = True

    def send_json(self, status: int, data: object, headers: dict[str, str] | None = None) -> None:
        self.send_body(status, json.dumps(data).encode(), headers=headers)


class LoopbackServer:
    """One HTTP(S) server on 127.0.0.1; port 0 picks a free one."""

    def __init__(
        self, handler: type[BaseHTTPRequestHandler], port: int = 0, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self._server = LoopbackHTTPServer(port, handler)
        if ssl_context is not None:
            # Handshake in the handler's thread, not in accept(): a stalled client blocks nobody.
            self._server.socket = ssl_context.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._scheme = "https" if ssl_context is not None else "http"
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"{self._scheme}://{LOOPBACK}:{self.port}"

    @property
    def server(self) -> ThreadingHTTPServer:
        return self._server

    @property
    def open_connections(self) -> int:
        return self._server.open_connections()

    def start(self) -> None:
        # A short poll interval: stop() waits for one, and tests stop many servers.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), name=f"sandbox-{self.port}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()
        self._server.close_connections()
