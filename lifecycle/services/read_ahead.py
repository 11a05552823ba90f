"""Reading an iterator a few items ahead on a thread of its own, so its I/O overlaps our work.

A reconciliation compares each page of the marketplace's list as it arrives. Read in
turn, the run would wait for every page while it has nothing to compare, and the API
would wait for the next request while the run compares. Read ahead, the next page is
on its way while this one is compared: the API's time and ours overlap instead of
adding up. At most `depth` items wait, so memory stays bounded whatever the source's length.

The source is iterated (and closed) on the reading thread only, since a generator cannot
be resumed from one thread while another runs it; the thread runs in the consumer's
context variables, so its logs carry the same ids. The source's error is raised to the
consumer in order, after the items read before it. Closing the reader early (a `break`,
an error in the consumer) stops the thread before it reads further and waits for it.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

_POLL_SECONDS = 0.05  # how soon a reading thread blocked on a full buffer notices it is no longer wanted


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Done:
    pass


_DONE = _Done()


class ReadAhead(Generic[T]):
    """Iterates `source` on its own thread, up to `depth` items ahead of the consumer; use with `with`."""

    def __init__(self, source: Iterable[T], depth: int, *, name: str = "read-ahead") -> None:
        if depth < 1:
            raise ValueError("depth must be at least 1")
        self._buffer: queue.Queue[T | _Failed | _Done] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._source = source
        context = contextvars.copy_context()  # the consumer's log context (run id) goes with the reads
        self._thread = threading.Thread(target=context.run, args=(self._read,), name=name, daemon=True)
        self._thread.start()

    def __iter__(self) -> Iterator[T]:
        while True:
            item = self._buffer.get()
            if isinstance(item, _Done):
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item

    def __enter__(self) -> ReadAhead[T]:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop reading and wait for the thread (which closes the source)."""
        self._stop.set()
        self._thread.join()

    def _read(self) -> None:
        items = iter(self._source)
        try:
            for item in items:
                if not self._hand_over(item):
                    return
            self._hand_over(_DONE)
        except BaseException as error:  # the consumer raises it, in its own thread and in order
            self._hand_over(_Failed(error))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    def _hand_over(self, item: T | _Failed | _Done) -> bool:
        while not self._stop.is_set():
            try:
                self._buffer.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False
