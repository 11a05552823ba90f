"""The Queue and DeadLetters ports' contract, for the fake, the local queue and Service Bus.

Service Bus has no emulator that runs here: its adapter is held to the contract at the
SDK boundary (the real ServiceBusMessage it hands the sender). Set
SERVICEBUS_CONNECTION_STRING and SERVICEBUS_QUEUE to run the same contract against a
real namespace (duplicate detection included).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.servicebus import ServiceBusMessage
from azure.servicebus.exceptions import ServiceBusConnectionError

from lifecycle.errors import QueueUnavailable
from lifecycle.local.queue import LocalQueue
from lifecycle.ports import QueueMessage, operation_id_of
from lifecycle.queue.servicebus import ATTEMPT, ORIGINAL, SOURCE, ServiceBusQueue
from tests.fakes.queue import FakeQueue

Readback = Callable[[], list[QueueMessage]]


class CapturingSender:
    def __init__(self) -> None:
        self.messages: list[ServiceBusMessage] = []
        self.fail = False

    def send_messages(self, message: ServiceBusMessage) -> None:
        if self.fail:
            raise ServiceBusConnectionError(message="injected")
        self.messages.append(message)

    def close(self) -> None:
        pass


class ReceivedStandIn:
    """The attributes of a ServiceBusReceivedMessage the adapter reads, as AMQP hands them back (bytes keys)."""

    def __init__(self, message: QueueMessage, reason: str, sequence_number: int) -> None:
        self.message_id, self.session_id = message.message_id, message.session_id
        self.body = iter([message.body.encode()])
        self.application_properties = {ATTEMPT.encode(): message.attempt, SOURCE.encode(): message.source.encode()}
        self.dead_letter_reason, self.dead_letter_error_description = "ProcessingFailed", reason
        self.delivery_count, self.sequence_number = 10, sequence_number
        self.enqueued_time_utc = datetime(2030, 1, 1, tzinfo=UTC)
        self.locked = False


class DeadLetterReceiver:
    """The dead-letter sub-queue at the SDK boundary: peek by sequence number, receive, complete, abandon."""

    def __init__(self) -> None:
        self.messages: list[ReceivedStandIn] = []

    def __enter__(self) -> DeadLetterReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        for message in self.messages:
            message.locked = False  # closing the receiver releases its locks

    def peek_messages(self, max_message_count: int = 1, *, sequence_number: int = 0) -> list[ReceivedStandIn]:
        return [m for m in self.messages if m.sequence_number >= sequence_number][:max_message_count]

    def receive_messages(self, max_message_count: int = 1, max_wait_time: float | None = None) -> list[Any]:
        batch = [m for m in self.messages if not m.locked][:max_message_count]
        for message in batch:
            message.locked = True
        return batch

    def complete_message(self, message: ReceivedStandIn) -> None:
        self.messages.remove(message)

    def abandon_message(self, message: ReceivedStandIn) -> None:
        message.locked = False
        message.delivery_count += 1


class CapturingClient:
    def __init__(self) -> None:
        self.sender = CapturingSender()
        self.dead = DeadLetterReceiver()

    def get_queue_sender(self, queue_name: str) -> CapturingSender:
        return self.sender

    def get_queue_receiver(self, queue_name: str, *, sub_queue: Any = None, **_: Any) -> DeadLetterReceiver:
        assert sub_queue is not None, "only the dead-letter sub-queue is read; sessions are the trigger's"
        return self.dead

    def close(self) -> None:
        pass


def from_servicebus(message: ServiceBusMessage) -> QueueMessage:
    props = message.application_properties or {}
    return QueueMessage(
        session_id=str(message.session_id),
        message_id=str(message.message_id),
        body=str(message),
        scheduled_at=message.scheduled_enqueue_time_utc,
        attempt=int(props[ATTEMPT]),
        source=str(props[SOURCE]),
    )


@pytest.fixture(params=["fake", "local", "servicebus-sdk"])
def queue_and_readback(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, Readback]]:
    if request.param == "fake":
        fake = FakeQueue()
        yield fake, lambda: list(fake.sent)
    elif request.param == "local":
        local = LocalQueue(tmp_path / "q.sqlite", now=lambda: datetime(2030, 1, 1, tzinfo=UTC))

        def drain() -> list[QueueMessage]:
            out = []
            while (received := local.receive()) is not None:
                out.append(received.message)
                local.complete(received.lock_token)
            return out

        yield local, drain
    else:
        client = CapturingClient()
        yield ServiceBusQueue(client, "lifecycle"), lambda: [from_servicebus(m) for m in client.sender.messages]  # type: ignore[arg-type]


def test_a_sent_message_keeps_session_id_body_and_attempt(queue_and_readback: tuple[Any, Readback]) -> None:
    queue, readback = queue_and_readback
    sub, op = str(uuid.uuid4()), str(uuid.uuid4())
    queue.send(QueueMessage(session_id=sub, message_id=op, body='{"id": "x"}', attempt=3, source="replay"))
    [message] = readback()
    assert (message.session_id, message.message_id, message.body) == (sub, op, '{"id": "x"}')
    assert (message.attempt, message.source) == (3, "replay")


def test_a_schedule_is_kept(queue_and_readback: tuple[Any, Readback]) -> None:
    queue, readback = queue_and_readback
    due = datetime(2029, 12, 31, 23, 59, tzinfo=UTC)  # before the local queue's fixed "now"
    later = datetime(2030, 1, 1, 0, 1, tzinfo=UTC)  # after it
    queue.send(QueueMessage(session_id="s1", message_id="due", body="{}", scheduled_at=due))
    queue.send(QueueMessage(session_id="s2", message_id="later", body="{}", scheduled_at=later))
    messages = readback()
    if isinstance(queue, ServiceBusQueue | FakeQueue):  # the broker holds it: the send must carry the time
        assert [(m.message_id, m.scheduled_at) for m in messages] == [("due", due), ("later", later)]
    else:  # the local queue is the broker: it hands out only what is due
        assert [m.message_id for m in messages] == ["due"]


def test_servicebus_failures_become_queue_unavailable() -> None:
    client = CapturingClient()
    client.sender.fail = True
    with pytest.raises(QueueUnavailable):
        ServiceBusQueue(client, "lifecycle").send(QueueMessage(session_id="s", message_id="m", body="{}"))  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["fake", "local"])
def test_duplicate_message_ids_are_dropped_within_the_window_and_taken_after_it(kind: str, tmp_path: Path) -> None:
    clock = [datetime(2030, 1, 1, tzinfo=UTC)]
    window = timedelta(hours=8, minutes=30)
    queue: Any = (FakeQueue(now=lambda: clock[0], duplicate_window=window) if kind == "fake"
                  else LocalQueue(tmp_path / "q.sqlite", now=lambda: clock[0], duplicate_window=window))

    def sent() -> int:
        return len(queue.sent) if kind == "fake" else int(queue.depth())

    for _ in range(3):
        queue.send(QueueMessage(session_id="s", message_id="same", body="{}"))
    assert sent() == 1
    clock[0] += window - timedelta(minutes=1)
    queue.send(QueueMessage(session_id="s", message_id="same", body="{}"))
    assert sent() == 1
    clock[0] += timedelta(minutes=2)  # past the window of the first send: a redelivery hours later
    queue.send(QueueMessage(session_id="s", message_id="same", body="{}"))
    assert sent() == 2


@pytest.mark.skipif(not os.environ.get("SERVICEBUS_CONNECTION_STRING"), reason="no Service Bus namespace configured")
def test_a_real_namespace_takes_a_scheduled_session_message() -> None:
    queue = ServiceBusQueue.from_connection_string(
        os.environ["SERVICEBUS_CONNECTION_STRING"], os.environ.get("SERVICEBUS_QUEUE", "lifecycle")
    )
    later = datetime.now(UTC) + timedelta(minutes=5)
    queue.send(QueueMessage(session_id=str(uuid.uuid4()), message_id=str(uuid.uuid4()), body="{}", scheduled_at=later))
    queue.close()


Kill = Callable[[QueueMessage, str], None]
"""Put a message where the broker does once it gives up on it, with the reason."""


@pytest.fixture(params=["fake", "local", "servicebus-sdk"])
def dead_letters(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, Kill, Readback]]:
    if request.param == "fake":
        fake = FakeQueue()

        def kill_fake(message: QueueMessage, reason: str) -> None:
            fake.send(message)  # sent first, so duplicate detection has seen its id
            fake.sent.remove(message)
            fake.dead_letter(message, reason)

        yield fake, kill_fake, lambda: list(fake.sent)
    elif request.param == "local":
        local = LocalQueue(tmp_path / "q.sqlite", now=lambda: datetime(2030, 1, 1, tzinfo=UTC))

        def kill_local(message: QueueMessage, reason: str) -> None:
            local.send(message)
            received = local.receive()
            assert received is not None
            local.dead_letter(received.lock_token, reason)

        def drain() -> list[QueueMessage]:
            out = []
            while (received := local.receive()) is not None:
                out.append(received.message)
                local.complete(received.lock_token)
            return out

        yield local, kill_local, drain
    else:
        client = CapturingClient()

        def kill_servicebus(message: QueueMessage, reason: str) -> None:
            client.dead.messages.append(ReceivedStandIn(message, reason, len(client.dead.messages) + 1))

        queue = ServiceBusQueue(client, "lifecycle")  # type: ignore[arg-type]
        yield queue, kill_servicebus, lambda: [from_servicebus(m) for m in client.sender.messages]


def delivery(session: str = "", operation: str = "") -> QueueMessage:
    operation = operation or str(uuid.uuid4())
    return QueueMessage(session_id=session or str(uuid.uuid4()), message_id=operation,
                        body=f'{{"id": "{operation}", "action": "Suspend"}}')


def test_a_dead_letter_is_listed_with_its_message_reason_and_deliveries(
    dead_letters: tuple[Any, Kill, Readback]
) -> None:
    queue, kill, _ = dead_letters
    message = delivery()
    kill(message, "UnverifiedEvent: no such operation")
    [dead] = queue.dead_letters()
    assert (dead.message.session_id, dead.message.message_id, dead.message.body) == (
        message.session_id, message.message_id, message.body)
    assert "UnverifiedEvent: no such operation" in dead.reason
    assert dead.delivery_count >= 1
    assert dead.enqueued_at.tzinfo is not None


def test_a_replay_sends_the_delivery_back_as_a_replay_past_duplicate_detection(
    dead_letters: tuple[Any, Kill, Readback]
) -> None:
    queue, kill, readback = dead_letters
    message = replace(delivery(), attempt=8)  # given up on after our last re-send: a replay starts over
    kill(message, "MaxDeliveryCountExceeded")
    assert queue.replay(message.message_id)
    assert queue.dead_letters() == []
    [back] = readback()
    assert (back.session_id, back.body, back.source, back.attempt) == (message.session_id, message.body, "replay", 1)
    # A new id naming the operation: our re-sends of it (`<id>#2`) must not be ids seen before.
    assert back.message_id.startswith(f"{message.message_id}:replay:")
    assert operation_id_of(back.message_id) == message.message_id


def test_replaying_an_unknown_id_changes_nothing(dead_letters: tuple[Any, Kill, Readback]) -> None:
    queue, kill, readback = dead_letters
    kill(delivery(), "boom")
    assert not queue.replay("not-a-dead-letter")
    assert len(queue.dead_letters()) == 1
    assert readback() == []


def test_dead_letters_are_listed_oldest_first_up_to_the_limit(dead_letters: tuple[Any, Kill, Readback]) -> None:
    queue, kill, _ = dead_letters
    messages = [delivery(operation=f"op-{n}") for n in range(3)]
    for message in messages:
        kill(message, "boom")
    assert [d.message.message_id for d in queue.dead_letters(limit=2)] == ["op-0", "op-1"]
    assert queue.replay("op-1")
    assert [d.message.message_id for d in queue.dead_letters()] == ["op-0", "op-2"]


def test_a_servicebus_replay_is_a_copy_under_a_new_id_with_the_original_kept() -> None:
    client = CapturingClient()
    message = delivery(session="sub-1", operation="op-1")
    client.dead.messages += [ReceivedStandIn(delivery(), "other", 1), ReceivedStandIn(message, "boom", 7)]
    assert ServiceBusQueue(client, "lifecycle").replay("op-1")  # type: ignore[arg-type]
    [copy] = client.sender.messages
    assert (copy.message_id, copy.session_id) == ("op-1:replay:7", "sub-1")
    assert (copy.application_properties or {}).get(ORIGINAL) == "op-1"
    [other] = client.dead.messages  # looked at, given back
    assert (other.locked, other.delivery_count) == (False, 11)


def test_servicebus_dead_letter_failures_become_queue_unavailable() -> None:
    client = CapturingClient()
    client.dead.messages.append(ReceivedStandIn(delivery(operation="op-1"), "boom", 1))
    client.sender.fail = True
    with pytest.raises(QueueUnavailable):
        ServiceBusQueue(client, "lifecycle").replay("op-1")  # type: ignore[arg-type]
    assert len(client.dead.messages) == 1  # not completed: the send did not happen


@pytest.mark.skipif(not os.environ.get("SERVICEBUS_CONNECTION_STRING"), reason="no Service Bus namespace configured")
def test_a_real_namespace_lists_and_replays_a_dead_letter() -> None:
    from azure.servicebus import ServiceBusClient

    conn, name = os.environ["SERVICEBUS_CONNECTION_STRING"], os.environ.get("SERVICEBUS_QUEUE", "lifecycle")
    message = delivery()
    queue = ServiceBusQueue.from_connection_string(conn, name)
    queue.send(message)
    with ServiceBusClient.from_connection_string(conn) as client, client.get_queue_receiver(
        name, session_id=message.session_id, max_wait_time=10
    ) as receiver:
        [received] = receiver.receive_messages(max_wait_time=10)
        receiver.dead_letter_message(received, reason="contract test", error_description="forced")
    assert message.message_id in [d.message.message_id for d in queue.dead_letters(limit=1000)]
    assert queue.replay(message.message_id)
    assert message.message_id not in [d.message.message_id for d in queue.dead_letters(limit=1000)]
    queue.close()
