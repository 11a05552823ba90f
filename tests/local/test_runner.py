"""The processing loops: dispositions become queue calls; failures back off, then dead-letter."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lifecycle.entrypoints.processor import Disposition, Handled
from lifecycle.errors import StorageUnavailable
from lifecycle.local.queue import LocalQueue
from lifecycle.local.runner import Backoff, Runner
from lifecycle.ports import QueueMessage
from tests.fakes.clock import SteppingClock


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock()


@pytest.fixture
def queue(tmp_path: Path, clock: SteppingClock) -> LocalQueue:
    return LocalQueue(tmp_path / "queue.sqlite", max_delivery_count=3, now=clock)


def message(mid: str, session: str = "sub-1") -> QueueMessage:
    return QueueMessage(session_id=session, message_id=mid, body="{}")


def answering(*outcomes: Handled | Exception) -> Callable[[QueueMessage, int], Handled]:
    """A handler that answers each call with the next outcome (raising it if it is an error)."""
    pending = list(outcomes)

    def handle(_: QueueMessage, __: int) -> Handled:
        outcome = pending.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return handle


@pytest.mark.parametrize("disposition", [Disposition.COMPLETE, Disposition.RESCHEDULED])
def test_a_handled_message_is_completed(queue: LocalQueue, disposition: Disposition) -> None:
    queue.send(message("op-1"))
    runner = Runner(queue, answering(Handled(disposition)))

    assert runner.run_once()

    assert queue.depth() == 0
    assert queue.dead_letters() == []


def test_a_dead_letter_disposition_dead_letters_with_its_reason(queue: LocalQueue) -> None:
    queue.send(message("op-1"))
    runner = Runner(queue, answering(Handled(Disposition.DEAD_LETTER, "UnverifiedEvent: no such operation")))

    runner.run_once()

    [dead] = queue.dead_letters()
    assert (dead.message.message_id, dead.reason) == ("op-1", "UnverifiedEvent: no such operation")


def test_a_transient_error_abandons_with_a_backoff_that_blocks_the_session(
    queue: LocalQueue, clock: SteppingClock
) -> None:
    queue.send(message("op-1"))
    queue.send(message("op-2"))  # same subscription: must not overtake op-1
    seen: list[str] = []

    def handle(received: QueueMessage, _: int) -> Handled:
        seen.append(received.message_id)
        if len(seen) == 1:
            raise StorageUnavailable("table storage answered 503")
        return Handled(Disposition.COMPLETE)

    runner = Runner(queue, handle, backoff=Backoff(base=2.0))
    runner.run_once()
    assert not runner.run_once()  # op-1 backs off for 2 s, and op-2 waits behind it
    clock.advance(2)
    runner.run_once()
    runner.run_once()
    assert seen == ["op-1", "op-1", "op-2"]
    assert queue.depth() == 0


def test_the_handler_is_told_each_delivery_count(queue: LocalQueue, clock: SteppingClock) -> None:
    queue.send(message("op-1"))
    counts: list[int] = []

    def handle(_: QueueMessage, delivery_count: int) -> Handled:
        counts.append(delivery_count)
        if len(counts) == 1:
            raise StorageUnavailable("down")
        return Handled(Disposition.COMPLETE)

    runner = Runner(queue, handle, backoff=Backoff(base=1.0))
    runner.run_once()
    clock.advance(1)
    runner.run_once()
    assert counts == [1, 2]  # the redelivery is counted as Service Bus would


def test_an_unexpected_error_is_abandoned_like_a_transient_one(queue: LocalQueue, clock: SteppingClock) -> None:
    queue.send(message("op-1"))
    runner = Runner(queue, answering(KeyError("bug"), Handled(Disposition.COMPLETE)), backoff=Backoff(base=1.0))

    runner.run_once()
    clock.advance(1)
    runner.run_once()

    assert queue.depth() == 0


def test_a_message_that_keeps_failing_is_dead_lettered_after_max_deliveries(
    queue: LocalQueue, clock: SteppingClock
) -> None:
    queue.send(message("op-1"))
    runner = Runner(queue, answering(*[StorageUnavailable("down")] * 3), backoff=Backoff(base=1.0, cap=1.0))

    for _ in range(4):
        runner.run_once()
        clock.advance(1)

    [dead] = queue.dead_letters()
    assert "MaxDeliveryCount" in dead.reason
    assert queue.depth() == 0


def test_backoff_doubles_up_to_its_cap() -> None:
    backoff = Backoff(base=0.5, cap=3.0)
    assert [backoff(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_loops_process_different_subscriptions_at_once_and_stop_cleanly(tmp_path: Path) -> None:
    queue = LocalQueue(tmp_path / "queue.sqlite")
    both_in_hand = threading.Barrier(2, timeout=5)

    def handle(_: QueueMessage, __: int) -> Handled:
        both_in_hand.wait()  # only passes if two loops hold a message each at the same time
        return Handled(Disposition.COMPLETE)

    queue.send(message("a-1", session="sub-a"))
    queue.send(message("b-1", session="sub-b"))
    runner = Runner(queue, handle, loops=2, idle_wait=0.01).start()
    try:
        deadline = time.monotonic() + 5
        while queue.depth() and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        assert runner.stop(timeout=5)
    assert queue.depth() == 0


def test_a_runner_needs_a_loop(queue: LocalQueue) -> None:
    with pytest.raises(ValueError, match="at least one loop"):
        Runner(queue, answering(), loops=0)
