"""The local server's handler threads: a few workers and one queue, served in arrival order.

Measured at 50 kept-alive connections, 50 threads each running a handler spent most of a
request's time waiting for the GIL before its request was even read, and which thread got
the GIL next was luck: the mean was 50 / throughput, the tail several times it. With a few
workers and one queue, a request waits its turn instead.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

T = TypeVar("T")


class Workers(Generic[T]):
    """`count` daemon threads running calls in submission order (a stuck handler must not keep the process alive)."""

    def __init__(self, count: int) -> None:
        self._calls: queue.SimpleQueue[tuple[Callable[[], T], Future[T]] | None] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._work, name=f"http-worker-{n}", daemon=True)
                         for n in range(count)]
        for thread in self._threads:
            thread.start()

    def submit(self, call: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
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
            except BaseException as error:  # handed to the caller's thread (the server answers 500)
                future.set_exception(error)
