"""The local queue keeps the Service Bus semantics the worker relies on, on disk."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from lifecycle.local.queue import LocalQueue, Received
from lifecycle.ports import QueueMessage, resend_id
from tests.fakes.clock import SteppingClock


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock()


@pytest.fixture
def queue(tmp_path: Path, clock: SteppingClock) -> LocalQueue:
    return LocalQueue(tmp_path / "q.sqlite", max_delivery_count=3, lock_seconds=30, now=clock)


def msg(session: str, mid: str, **kw: object) -> QueueMessage:
    return QueueMessage(session_id=session, message_id=mid, body=f'{{"id": "{mid}"}}', **kw)  # type: ignore[arg-type]


def receive(queue: LocalQueue) -> Received:
    got = queue.receive()
    assert got is not None
    return got


def test_messages_of_one_session_come_out_in_order_one_at_a_time(queue: LocalQueue) -> None:
    for mid in ("a1", "a2", "a3"):
        queue.send(msg("A", mid))
    first = receive(queue)
    assert first.message.message_id == "a1"
    assert queue.receive() is None  # the session is locked while a1 is being processed
    queue.complete(first.lock_token)
    assert receive(queue).message.message_id == "a2"


def test_other_sessions_are_not_blocked_by_a_locked_one(queue: LocalQueue) -> None:
    queue.send(msg("A", "a1"))
    queue.send(msg("A", "a2"))
    queue.send(msg("B", "b1"))
    assert receive(queue).message.message_id == "a1"
    assert receive(queue).message.message_id == "b1"


def test_a_message_id_seen_within_the_window_is_dropped(queue: LocalQueue, clock: SteppingClock) -> None:
    queue.send(msg("A", "a1"))
    queue.send(msg("A", "a1"))
    assert queue.depth() == 1
    queue.complete(receive(queue).lock_token)
    queue.send(msg("A", "a1"))
    assert queue.depth() == 0
    clock.advance(9 * 3600)
    queue.send(msg("A", "a1"))  # past the window: a redelivery hours later gets through
    assert queue.depth() == 1


def test_an_expired_lock_makes_the_message_visible_again(queue: LocalQueue, clock: SteppingClock) -> None:
    queue.send(msg("A", "a1"))
    first = receive(queue)
    clock.advance(31)
    again = receive(queue)
    assert again.message.message_id == "a1"
    assert again.delivery_count == 2
    queue.complete(first.lock_token)  # the dead consumer's old lock no longer completes it
    assert queue.depth() == 1


def test_after_max_deliveries_the_message_is_dead_lettered_with_a_reason(queue: LocalQueue) -> None:
    queue.send(msg("A", "a1"))
    for _ in range(3):
        queue.abandon(receive(queue).lock_token, "boom")
    assert queue.receive() is None
    [dead] = queue.dead_letters()
    assert dead.message.message_id == "a1"
    assert "MaxDeliveryCount" in dead.reason
    assert dead.delivery_count == 3


def test_a_dead_letter_can_be_replayed_once(queue: LocalQueue) -> None:
    queue.send(msg("A", "a1"))
    queue.dead_letter(receive(queue).lock_token, "unverified")
    assert queue.dead_letters()[0].reason == "unverified"
    assert queue.replay("a1")
    again = receive(queue)
    assert again.message.message_id.startswith("a1:replay:")
    assert again.message.source == "replay"
    assert not queue.replay("a1")


def test_a_replayed_message_re_sent_by_the_processor_is_not_taken_for_a_duplicate(queue: LocalQueue) -> None:
    queue.send(msg("A", "a1"))
    queue.send(msg("A", "a1#2"))  # the processor's re-send, before the delivery was given up on
    queue.dead_letter(receive(queue).lock_token, "storage unavailable after 8 attempts")
    queue.dead_letter(receive(queue).lock_token, "storage unavailable after 8 attempts")
    assert queue.replay("a1")
    replayed = receive(queue)
    queue.complete(replayed.lock_token)

    queue.send(msg("A", resend_id(replayed.message.message_id, 2)))  # storage still down: re-sent

    assert receive(queue).message.message_id == f"{replayed.message.message_id}#2"


def test_a_scheduled_message_stays_invisible_until_its_time(queue: LocalQueue, clock: SteppingClock) -> None:
    queue.send(msg("A", "a1", scheduled_at=clock.now + timedelta(seconds=2)))
    assert queue.receive() is None
    clock.advance(2)
    assert receive(queue).message.message_id == "a1"


def test_a_received_message_says_since_when_it_was_due(queue: LocalQueue, clock: SteppingClock) -> None:
    sent_at = clock.now
    queue.send(msg("A", "now"))
    queue.send(msg("B", "later", scheduled_at=sent_at + timedelta(seconds=5)))
    clock.advance(9)
    due = {r.message.message_id: r.message.scheduled_at for r in (receive(queue), receive(queue))}
    assert due == {"now": sent_at, "later": sent_at + timedelta(seconds=5)}  # the processor's lag starts there


def test_messages_survive_a_restart(tmp_path: Path, clock: SteppingClock) -> None:
    path = tmp_path / "q.sqlite"
    LocalQueue(path, now=clock).send(msg("A", "a1", attempt=2))
    received = receive(LocalQueue(path, now=clock))
    assert (received.message.message_id, received.message.attempt) == ("a1", 2)


def test_sends_from_many_threads_of_two_queues_on_one_file_all_arrive_once(tmp_path: Path) -> None:
    import threading

    path = tmp_path / "shared.sqlite"
    queues = [LocalQueue(path), LocalQueue(path)]  # as the webhook's and the processor's, in one process

    def send(n: int) -> None:
        for m in range(25):
            queues[n % 2].send(msg(f"S{n}", f"m{n}-{m}"))

    threads = [threading.Thread(target=send, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    received = []
    while (got := queues[0].receive()) is not None:
        received.append(got.message.message_id)
        queues[1].complete(got.lock_token)
    assert sorted(received) == sorted(f"m{n}-{m}" for n in range(8) for m in range(25))
