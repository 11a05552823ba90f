"""A webhook endpoint for tests: records each delivery and answers as the test says."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]  # lower-case names
    body: dict[str, Any]


class Receiver:
    """Answers from `answers` (then `default`), after `before_answer` and before `after_answer` hooks.

    `hold` makes it keep the request open until `release()` (a publisher too slow to answer).
    """

    def __init__(self) -> None:
        self.deliveries: list[Received] = []
        self.answers: list[int] = []
        self.default = 200
        self.before_answer: Callable[[Received], None] | None = None
        self.after_answer: Callable[[Received], None] | None = None
        self.hold = False
        self._released = threading.Event()
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                headers = {name.lower(): value for name, value in self.headers.items()}
                received = Received(headers, json.loads(self.rfile.read(length)))
                receiver._record(received)
                if receiver.hold:
                    receiver._released.wait(10)
                if receiver.before_answer:
                    receiver.before_answer(received)
                status = receiver.answers.pop(0) if receiver.answers else receiver.default
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    self.wfile.flush()
                except OSError:
                    return  # the sender gave up waiting
                if receiver.after_answer:
                    receiver.after_answer(received)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/marketplace/webhook"

    def _record(self, received: Received) -> None:
        with self._changed:
            self.deliveries.append(received)
            self._changed.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.deliveries) >= count, timeout):
                raise AssertionError(f"expected {count} deliveries, got {len(self.deliveries)}")
            return list(self.deliveries)

    def release(self) -> None:
        self._released.set()

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
