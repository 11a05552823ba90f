"""The local HTTP server: raw HTTP on 127.0.0.1 -> `func.HttpRequest` -> the shared handlers.

In Azure the Functions host turns HTTP into `func.HttpRequest` objects and calls our
functions; here this server does it, with the same routes under `/api` and the same
handlers (`lifecycle.entrypoints.http`), so both runtimes answer alike. What the host
refuses before any function runs, this server refuses too, without calling one:

    404  no route has this path            405  the path exists, the method does not
    413  a body over `max_body_bytes`, refused from its Content-Length before it is read
    400  a Content-Length or chunk size that is not a number
    408  a body that does not arrive within `timeout` seconds (the connection is closed)

Every socket has that timeout, and a body has it as a whole (`request_body`), so a slow,
silent or trickling client holds a thread for about `timeout` seconds at most while it
sends its body. (The request line and headers have the per-read timeout only.)
Headers and bodies are never logged (bearer tokens, e-mails).

Each connection has a thread that reads whole requests (a slow client only ever holds its
own); the handlers run on a small pool of `workers` threads, in the order the requests
were complete, first in first out (why: `lifecycle.local.workers`).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, cast
from urllib.parse import parse_qsl, unquote, urlsplit

import azure.functions as func

from lifecycle.local.request_body import BodyRefused, has_body, read_body
from lifecycle.local.workers import Workers
from lifecycle.logs import get_logger
from lifecycle.sandbox.httpd import LOOPBACK, LoopbackHTTPServer
from lifecycle.services.ingress import MAX_BODY_BYTES

ROUTE_PREFIX = "/api"  # the Functions host's default routePrefix
WORKERS = 8  # handlers at once: enough to overlap their storage round trips, few enough to share one GIL fairly

Handler = Callable[[func.HttpRequest], func.HttpResponse]


@dataclass(frozen=True, slots=True)
class Route:
    """`template` as in a Functions route (`subscriptions/{id}`), under ROUTE_PREFIX."""

    method: str
    template: str
    handler: Handler
    pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        parts = [
            f"(?P<{part[1:-1]}>[^/]+)" if part.startswith("{") and part.endswith("}") else re.escape(part)
            for part in self.template.strip("/").split("/")
        ]
        object.__setattr__(self, "pattern", re.compile(re.escape(ROUTE_PREFIX) + "/" + "/".join(parts) + "/?"))


class _Server(LoopbackHTTPServer):
    request_queue_size = 128  # socketserver's default backlog of 5 drops bursts of connections
    block_on_close = False

    def __init__(self, port: int, routes: Sequence[Route], max_body_bytes: int, timeout: float, workers: int) -> None:
        super().__init__(port, _RequestHandler)
        self.workers: Workers[func.HttpResponse] = Workers(workers)
        self.routes = tuple(routes)
        self.max_body_bytes = max_body_bytes
        self.request_timeout = timeout

    def report_error(self, error: BaseException | None, request: Any, client_address: Any) -> None:
        get_logger("lifecycle.local.http").error("http.connection_failed", error_type=type(error).__name__)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the marketplace's sender pools connections
    # Status line and headers, then the body, leave in separate writes; with Nagle on, a kept-alive
    # connection holds the body until the client's delayed ACK, about 40 ms per answer.
    disable_nagle_algorithm = True
    server_version = "lifecycle-local"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self._server.request_timeout)  # reads and writes alike

    @property
    def _server(self) -> _Server:
        return cast(_Server, self.server)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one structured line per request instead (see _handle)

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def _handle(self) -> None:
        started = time.perf_counter()
        url = urlsplit(self.path)
        response = self._dispatch(url.path, url.query)
        self._send(response)
        level = "debug" if url.path == f"{ROUTE_PREFIX}/health" else "info"
        getattr(get_logger("lifecycle.local.http"), level)(
            "http.request", method=self.command, path=url.path, status=response.status_code,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )

    def _dispatch(self, path: str, query: str) -> func.HttpResponse:
        found = [(route, match) for route in self._server.routes if (match := route.pattern.fullmatch(path))]
        if not found:
            return self._refuse(404, f"no route {path}")
        chosen = next(((route, match) for route, match in found if route.method == self.command), None)
        if chosen is None:
            response = self._refuse(405, f"{self.command} is not allowed on {path}")
            response.headers.add_header("Allow", ", ".join(sorted({route.method for route, _ in found})))
            return response
        try:
            body = read_body(self.rfile, self.headers, cap=self._server.max_body_bytes,
                             timeout=self._server.request_timeout)
        except BodyRefused as refusal:
            return self._refuse(refusal.status, str(refusal))
        route, match = chosen
        request = func.HttpRequest(
            self.command, f"http://{LOOPBACK}:{self._server.server_address[1]}{self.path}",
            headers=dict(self.headers.items()), params=dict(parse_qsl(query, keep_blank_values=True)),
            route_params={name: unquote(value) for name, value in match.groupdict().items()},  # as the host does
            body=body,
        )
        try:
            return self._server.workers.submit(lambda: route.handler(request)).result()
        except Exception as error:  # the shared handlers catch their own; this is the last line
            get_logger("lifecycle.local.http").error("http.crashed", path=path, error_type=type(error).__name__)
            return _json(500, "internal error")

    def _refuse(self, status: int, message: str) -> func.HttpResponse:
        if has_body(self.headers):
            self.close_connection = True  # its body stays unread: this connection is out of step
        return _json(status, message)

    def _send(self, response: func.HttpResponse) -> None:
        body = response.get_body() or b""
        try:
            self.send_response(response.status_code)
            headers = {name.lower(): (name, value) for name, value in response.headers.items()}
            if "content-type" not in headers:
                headers["content-type"] = ("Content-Type", f"{response.mimetype}; charset={response.charset}")
            headers["content-length"] = ("Content-Length", str(len(body)))
            if self.close_connection:
                headers["connection"] = ("Connection", "close")
            for name, value in headers.values():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True  # the client left first: nobody to tell


def _json(status: int, error: str) -> func.HttpResponse:
    return func.HttpResponse(json.dumps({"error": error}), status_code=status, mimetype="application/json")


class LocalServer:
    """The routes served on 127.0.0.1:`port` (0 picks a free port) from a background thread."""

    def __init__(
        self, routes: Sequence[Route], *, port: int = 7071, max_body_bytes: int = MAX_BODY_BYTES, timeout: float = 10.0,
        workers: int = WORKERS,
    ) -> None:
        try:
            self._server = _Server(port, routes, max_body_bytes, timeout, workers)
        except OSError as error:  # name the port: "Address already in use" alone does not say which
            raise OSError(error.errno, f"cannot listen on {LOOPBACK}:{port}: {error.strerror}") from error
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def waiting(self) -> int:
        """Requests read whole and queued for a worker."""
        return self._server.workers.waiting()

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def open_connections(self) -> int:
        """Connections accepted and not yet finished with (kept-alive ones included)."""
        return self._server.open_connections()

    def start(self) -> LocalServer:
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, close kept-alive connections (their idle threads end at once)."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()
        self._server.workers.stop()
        self._server.close_connections()
