"""The local HTTP server: raw HTTP on 127.0.0.1 -> `func.HttpRequest` -> the shared handlers.

In Azure the Functions host turns HTTP into `func.HttpRequest` objects and calls our
functions; here this server does it, with the same routes under `/api` and the same
handlers (`lifecycle.entrypoints.http`), so both runtimes answer alike. What the host
refuses before any function runs, this server refuses too, without calling one:

    404  no route has this path            405  the path exists, the method does not
    413  a body over `max_body_bytes`, refused from its Content-Length before it is read
    400  a Content-Length or chunk size that is not a number
    408  a body that does not arrive within `timeout` seconds (the connection is closed)

Every socket has that timeout, and a body has it as a whole (not per read), so a slow,
silent or trickling client holds a thread for about `timeout` seconds at most while it
sends its body. (The request line and headers have the per-read timeout only.)
Headers and bodies are never logged (bearer tokens, e-mails).

Each connection has a thread that reads whole requests (a slow client only ever holds its
own); the handlers run on a small pool of `workers` threads, in the order the requests
were complete (FIFO). Measured at 50 kept-alive connections, 50 threads each running a
handler spent most of a request's time waiting for the GIL before its request was even
read, and which thread got the GIL next was luck: the mean was 50 / throughput, the tail
several times it. With a few workers and one queue, a request waits its turn instead.
"""

from __future__ import annotations

import json
import queue
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func

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


class _BodyRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Workers:
    """`count` daemon threads running calls in submission order (a stuck handler must not keep the process alive)."""

    def __init__(self, count: int) -> None:
        self._calls: queue.SimpleQueue[tuple[Callable[[], func.HttpResponse], Future[func.HttpResponse]] | None] = (
            queue.SimpleQueue())
        self._threads = [threading.Thread(target=self._work, name=f"http-worker-{n}", daemon=True)
                         for n in range(count)]
        for thread in self._threads:
            thread.start()

    def submit(self, call: Callable[[], func.HttpResponse]) -> Future[func.HttpResponse]:
        future: Future[func.HttpResponse] = Future()
        self._calls.put((call, future))
        return future

    def waiting(self) -> int:
        return self._calls.qsize()

    def stop(self) -> None:
        for _ in self._threads:
            self._calls.put(None)  # behind what is queued: requests already read are still answered

    def _work(self) -> None:
        while (item := self._calls.get()) is not None:
            call, future = item
            try:
                future.set_result(call())
            except BaseException as error:  # handed to the connection's thread, which answers 500
                future.set_exception(error)


class _Server(LoopbackHTTPServer):
    request_queue_size = 128  # socketserver's default backlog of 5 drops bursts of connections
    block_on_close = False

    def __init__(self, port: int, routes: Sequence[Route], max_body_bytes: int, timeout: float, workers: int) -> None:
        super().__init__(port, _RequestHandler)
        self.workers = _Workers(workers)
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
            body = self._read_body()
        except _BodyRefused as refusal:
            return self._refuse(refusal.status, str(refusal))
        route, match = chosen
        request = func.HttpRequest(
            self.command, f"http://{LOOPBACK}:{self._server.server_address[1]}{self.path}",
            headers=dict(self.headers.items()), params=dict(parse_qsl(query, keep_blank_values=True)),
            route_params=match.groupdict(), body=body,
        )
        try:
            return self._server.workers.submit(lambda: route.handler(request)).result()
        except Exception as error:  # the shared handlers catch their own; this is the last line
            get_logger("lifecycle.local.http").error("http.crashed", path=path, error_type=type(error).__name__)
            return _json(500, "internal error")

    def _refuse(self, status: int, message: str) -> func.HttpResponse:
        if self._has_body():
            self.close_connection = True  # its body stays unread: this connection is out of step
        return _json(status, message)

    def _has_body(self) -> bool:
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        return chunked or self.headers.get("Content-Length", "0").strip() not in ("", "0")

    def _read_body(self) -> bytes:
        cap = self._server.max_body_bytes
        # One deadline for the whole body: the socket's timeout bounds each read only, and a
        # client trickling a byte at a time would otherwise hold this thread for ever.
        deadline = time.monotonic() + self._server.request_timeout
        try:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                return self._read_chunked(cap, deadline)
            length = _number(self.headers.get("Content-Length") or "0", 10)
            if length > cap:
                raise _BodyRefused(413, f"body larger than {cap} bytes")
            body = self._read_exactly(length, deadline)
        except TimeoutError:
            raise _BodyRefused(408, "the body did not arrive in time") from None
        if len(body) < length:
            raise _BodyRefused(400, "the body ended early")
        return body

    def _read_exactly(self, length: int, deadline: float) -> bytes:
        """Up to `length` bytes (fewer if the client closes); TimeoutError past `deadline`."""
        body = bytearray()
        while len(body) < length:
            if time.monotonic() > deadline:
                raise TimeoutError
            part = self.rfile.read1(length - len(body))  # at most one read from the socket
            if not part:
                break
            body += part
        return bytes(body)

    def _read_chunked(self, cap: int, deadline: float) -> bytes:
        # The marketplace's sender may stream (.NET does for some content): a refused chunked
        # ChangePlan would be a 4xx, i.e. a rejection, so chunked bodies are read, not refused.
        body = bytearray()
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError
            size = _number(self.rfile.readline(100).split(b";")[0].strip().decode("ascii", "replace"), 16)
            if len(body) + size > cap:
                raise _BodyRefused(413, f"body larger than {cap} bytes")
            if size == 0:
                while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                    pass  # trailers: nothing of ours uses them
                return bytes(body)
            chunk = self._read_exactly(size, deadline)
            if len(chunk) < size:
                raise _BodyRefused(400, "the body ended early")
            body += chunk
            self.rfile.readline(3)  # the CRLF after each chunk

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


def _number(text: str, base: int) -> int:
    try:
        value = int(text, base)
    except ValueError:
        raise _BodyRefused(400, "malformed Content-Length or chunk size") from None
    if value < 0:
        raise _BodyRefused(400, "malformed Content-Length")
    return value


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
