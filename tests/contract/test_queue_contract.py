"""The Queue port's contract, for the fake, the local queue and Service Bus.

Service Bus has no emulator that runs here: its adapter is held to the contract at the
SDK boundary (the real ServiceBusMessage it hands the sender). Set
SERVICEBUS_CONNECTION_STRING and SERVICEBUS_QUEUE to run the same contract against a
real namespace (duplicate detection included).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.servicebus import ServiceBusMessage
from azure.servicebus.exceptions import ServiceBusConnectionError

from lifecycle.errors import QueueUnavailable
from lifecycle.local.queue import LocalQueue
from lifecycle.ports import QueueMessage
from lifecycle.queue.servicebus import ATTEMPT, SOURCE, ServiceBusQueue
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


class CapturingClient:
    def __init__(self) -> None:
        self.sender = CapturingSender()

    def get_queue_sender(self, queue_name: str) -> CapturingSender:
        return self.sender

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


def test_a_sent_message_keeps_session_id_body_and_attempt(queue_and_readback):
    queue, readback = queue_and_readback
    sub, op = str(uuid.uuid4()), str(uuid.uuid4())
    queue.send(QueueMessage(session_id=sub, message_id=op, body='{"id": "x"}', attempt=3, source="replay"))
    [message] = readback()
    assert (message.session_id, message.message_id, message.body) == (sub, op, '{"id": "x"}')
    assert (message.attempt, message.source) == (3, "replay")


def test_a_schedule_is_carried(queue_and_readback):
    queue, readback = queue_and_readback
    when = datetime(2029, 12, 31, 23, 59, tzinfo=UTC)  # before the local queue's fixed "now"
    queue.send(QueueMessage(session_id="s", message_id="m", body="{}", scheduled_at=when))
    [message] = readback()
    if isinstance(queue, ServiceBusQueue | FakeQueue):
        assert message.scheduled_at == when
    else:
        assert message.message_id == "m"  # the local queue held it until its time and then handed it out


def test_servicebus_failures_become_queue_unavailable():
    client = CapturingClient()
    client.sender.fail = True
    with pytest.raises(QueueUnavailable):
        ServiceBusQueue(client, "lifecycle").send(QueueMessage(session_id="s", message_id="m", body="{}"))  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["fake", "local"])
def test_duplicate_message_ids_are_dropped(kind, tmp_path):
    queue: Any = FakeQueue() if kind == "fake" else LocalQueue(tmp_path / "q.sqlite")
    for _ in range(3):
        queue.send(QueueMessage(session_id="s", message_id="same", body="{}"))
    assert (len(queue.sent) if kind == "fake" else queue.depth()) == 1


@pytest.mark.skipif(not os.environ.get("SERVICEBUS_CONNECTION_STRING"), reason="no Service Bus namespace configured")
def test_a_real_namespace_takes_a_scheduled_session_message():
    queue = ServiceBusQueue.from_connection_string(
        os.environ["SERVICEBUS_CONNECTION_STRING"], os.environ.get("SERVICEBUS_QUEUE", "lifecycle")
    )
    later = datetime.now(UTC) + timedelta(minutes=5)
    queue.send(QueueMessage(session_id=str(uuid.uuid4()), message_id=str(uuid.uuid4()), body="{}", scheduled_at=later))
    queue.close()
