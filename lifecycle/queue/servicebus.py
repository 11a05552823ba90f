"""ServiceBusQueue: the Queue and DeadLetters ports on an Azure Service Bus queue with sessions.

The Functions output binding cannot set a session id or message id, so the webhook
sends with the SDK: session id = subscription id (per-subscription order), message id
= operation id (the queue's duplicate detection drops marketplace redeliveries within
its window). Every SDK failure becomes QueueUnavailable (the webhook answers 503).

Dead letters are read from the queue's dead-letter sub-queue (not session-enabled, so
no session receiver). A replay sends a copy to the main queue under a NEW message id,
`<original id>:replay:<sequence number>`: the same id would be dropped by duplicate
detection inside its window. The session id is kept (the subscription's order), the
original id rides along as an application property, and the processor keys everything
by the operation id in the body. Only then is the dead letter completed: a crash in
between leaves both, and replaying the copy's operation again changes nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusSender, ServiceBusSubQueue
from azure.servicebus.exceptions import ServiceBusError

from lifecycle.errors import QueueUnavailable
from lifecycle.ports import DeadLetter, QueueMessage

ATTEMPT = "attempt"
SOURCE = "source"
ORIGINAL = "original_message_id"  # on a replayed copy: the dead letter's own message id
REPLAY_SCAN = 1000  # dead letters looked through for the one to replay
T = TypeVar("T")


def to_servicebus(message: QueueMessage) -> ServiceBusMessage:
    return ServiceBusMessage(
        message.body,
        session_id=message.session_id,
        message_id=message.message_id,
        content_type="application/json",
        scheduled_enqueue_time_utc=message.scheduled_at,
        application_properties={ATTEMPT: message.attempt, SOURCE: message.source},
    )


class ServiceBusQueue:
    """One sender per process, opened on first send (never at import or construction)."""

    def __init__(self, client: ServiceBusClient, queue_name: str) -> None:
        self._client = client
        self._queue_name = queue_name
        self._sender: ServiceBusSender | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_connection_string(cls, conn: str, queue_name: str) -> ServiceBusQueue:
        return cls(ServiceBusClient.from_connection_string(conn), queue_name)

    @classmethod
    def from_namespace(cls, fully_qualified_namespace: str, credential: Any, queue_name: str) -> ServiceBusQueue:
        """Managed identity: pass azure-identity's DefaultAzureCredential."""
        return cls(ServiceBusClient(fully_qualified_namespace, credential), queue_name)

    def send(self, message: QueueMessage) -> None:
        self._guarded(lambda: self._open().send_messages(to_servicebus(message)))

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Peeked, so listing changes nothing (no lock taken, no delivery counted)."""
        return self._guarded(lambda: self._peek_dead(limit))

    def replay(self, message_id: str) -> bool:
        return self._guarded(lambda: self._replay(message_id))

    def _peek_dead(self, limit: int) -> list[DeadLetter]:
        found: list[DeadLetter] = []
        with self._client.get_queue_receiver(self._queue_name, sub_queue=ServiceBusSubQueue.DEAD_LETTER) as receiver:
            after = 0
            while len(found) < limit:
                batch = receiver.peek_messages(max_message_count=limit - len(found), sequence_number=after)
                if not batch:
                    break
                found += [_dead_letter(message) for message in batch]
                after = max(message.sequence_number or 0 for message in batch) + 1
        return found

    def _replay(self, message_id: str) -> bool:
        with self._client.get_queue_receiver(self._queue_name, sub_queue=ServiceBusSubQueue.DEAD_LETTER,
                                             max_wait_time=5) as receiver:
            looked, others = 0, []
            try:
                while looked < REPLAY_SCAN:
                    batch = receiver.receive_messages(max_message_count=50, max_wait_time=5)
                    if not batch:
                        return False
                    looked += len(batch)
                    for message in batch:
                        if message.message_id != message_id:
                            others.append(message)
                            continue
                        self._open().send_messages(_replay_copy(message))
                        receiver.complete_message(message)
                        return True
                return False
            finally:
                for other in others:  # back in the dead-letter queue, untouched but for its delivery count
                    receiver.abandon_message(other)

    def _guarded(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except (ServiceBusError, OSError) as error:
            raise QueueUnavailable(f"Service Bus: {type(error).__name__}: {error}") from error

    def _open(self) -> ServiceBusSender:
        with self._lock:
            if self._sender is None:
                self._sender = self._client.get_queue_sender(self._queue_name)
            return self._sender

    def close(self) -> None:
        with self._lock:
            if self._sender is not None:
                self._sender.close()
                self._sender = None
        self._client.close()


def _properties(message: Any) -> Mapping[str, Any]:
    # Received properties come back from AMQP with bytes keys (and often bytes values).
    raw: Mapping[Any, Any] = message.application_properties or {}
    return {_text(key): _text(value) if isinstance(value, bytes) else value for key, value in raw.items()}


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _body(message: Any) -> str:
    body = message.body
    raw = body if isinstance(body, bytes | str) else b"".join(body)  # AMQP data sections
    return _text(raw)


def _dead_letter(message: Any) -> DeadLetter:
    props = _properties(message)
    reason = message.dead_letter_reason or "dead-lettered"
    if message.dead_letter_error_description:
        reason = f"{reason}: {message.dead_letter_error_description}"
    queued = QueueMessage(session_id=message.session_id or "", message_id=message.message_id or "",
                          body=_body(message), attempt=_attempt(props.get(ATTEMPT)),
                          source=str(props.get(SOURCE) or "webhook"))
    when = message.enqueued_time_utc or datetime.now(UTC)
    return DeadLetter(queued, reason, int(message.delivery_count or 0), when)


def _replay_copy(message: Any) -> ServiceBusMessage:
    original = str(_properties(message).get(ORIGINAL) or message.message_id)
    return ServiceBusMessage(
        _body(message),
        session_id=message.session_id,
        message_id=f"{original}:replay:{message.sequence_number}",  # unique: sequence numbers are never reused
        content_type="application/json",
        application_properties={ATTEMPT: 1, SOURCE: "replay", ORIGINAL: original},
    )


def _attempt(raw: object) -> int:
    # Whatever a sender wrote there, a listing must not fail on it.
    text = str(raw)
    return max(int(text), 1) if text.isdigit() else 1
