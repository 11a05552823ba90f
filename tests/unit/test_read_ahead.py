"""Reading ahead: the same items in the same order, bounded, errors in place, nothing left running."""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Iterator

import pytest

from lifecycle.services.read_ahead import ReadAhead

WAIT = 5.0  # seconds a test waits for the reading thread before calling it stuck


class Source:
    """A generator's worth of items that records how far it was read, where, and whether it was closed."""

    def __init__(self, count: int, *, fail_at: int | None = None) -> None:
        self.count, self.fail_at = count, fail_at
        self.produced = 0
        self.closed = threading.Event()
        self.threads: set[str] = set()
        self.progress = threading.Condition()

    def __iter__(self) -> Iterator[int]:
        try:
            for n in range(self.count):
                self.threads.add(threading.current_thread().name)
                if n == self.fail_at:
                    raise ConnectionError(f"item {n} could not be read")
                with self.progress:
                    self.produced += 1
                    self.progress.notify_all()
                yield n
        finally:
            self.closed.set()

    def wait_produced(self, count: int) -> None:
        with self.progress:
            assert self.progress.wait_for(lambda: self.produced >= count, timeout=WAIT)


def test_every_item_comes_once_in_order() -> None:
    with ReadAhead(Source(100), depth=3) as reader:
        assert list(reader) == list(range(100))


def test_an_empty_source_reads_nothing() -> None:
    with ReadAhead(Source(0), depth=2) as reader:
        assert list(reader) == []


def test_the_source_is_read_on_another_thread_and_closed_there() -> None:
    source = Source(5)
    with ReadAhead(source, depth=2, name="pages") as reader:
        list(reader)
    assert source.threads == {"pages"}
    assert source.closed.is_set()


def test_it_reads_ahead_while_the_consumer_works_but_no_further_than_its_depth() -> None:
    source = Source(50)
    with ReadAhead(source, depth=3) as reader:
        items = iter(reader)
        assert next(items) == 0
        # The consumer holds item 0: the thread fills the buffer (3) and holds one more in hand.
        source.wait_produced(5)
        time.sleep(0.2)  # time enough to overrun, were it unbounded
        assert source.produced == 5
        assert next(items) == 1


def test_an_error_is_raised_after_the_items_read_before_it() -> None:
    got: list[int] = []

    def consume() -> None:
        with ReadAhead(Source(10, fail_at=4), depth=2) as reader:
            got.extend(reader)

    with pytest.raises(ConnectionError, match="item 4"):
        consume()
    assert got == [0, 1, 2, 3]


def test_closing_early_stops_the_thread_and_closes_the_source() -> None:
    source = Source(1000)
    reader = ReadAhead(source, depth=2, name="stopped-early")
    for item in reader:
        if item == 3:
            break
    reader.close()
    assert source.closed.is_set()
    assert source.produced < 10
    assert "stopped-early" not in {thread.name for thread in threading.enumerate()}


def test_an_error_in_the_consumer_stops_the_thread_too() -> None:
    source = Source(1000)

    def consume() -> None:
        with ReadAhead(source, depth=2, name="consumer-failed") as reader:
            for item in reader:
                if item == 1:
                    raise RuntimeError("the consumer failed")

    with pytest.raises(RuntimeError, match="consumer failed"):
        consume()
    assert source.closed.is_set()
    assert "consumer-failed" not in {thread.name for thread in threading.enumerate()}


def test_the_reading_thread_sees_the_consumers_context() -> None:
    run_id: contextvars.ContextVar[str] = contextvars.ContextVar("run_id", default="none")
    seen: list[str] = []

    def source() -> Iterator[int]:
        seen.append(run_id.get())
        yield 1

    run_id.set("run-7")
    with ReadAhead(source(), depth=1) as reader:
        list(reader)
    assert seen == ["run-7"]


def test_a_depth_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="depth"):
        ReadAhead(Source(1), depth=0)
