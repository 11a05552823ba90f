"""The queue ports: deliveries on their way to the processor, and those the queue gave up on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueMessage:
    """A delivery on its way to the processor: session = subscription, id = operation.

    The body is the webhook's JSON as received, so the processor parses exactly what the
    marketplace sent. `attempt` counts our own delayed re-sends (not broker redeliveries).
    """

    session_id: str
    message_id: str
    body: str
    scheduled_at: datetime | None = None
    attempt: int = 1
    source: str = "webhook"


def operation_id_of(message_id: str) -> str:
    """The operation a message delivers: its id without our re-send (`#n`) or replay (`:replay:n`) suffixes."""
    return message_id.partition("#")[0].partition(":replay:")[0]


def resend_id(message_id: str, attempt: int) -> str:
    """The id of our `attempt`-th send of a message: new for each attempt, so duplicate detection
    keeps it, and one suffix however often it is re-sent (`op#3`, not `op#2#3`)."""
    base, hash_sign, number = message_id.rpartition("#")
    return f"{base if hash_sign and number.isdigit() else message_id}#{attempt}"


class Queue(Protocol):
    """Where the webhook puts deliveries for the processor (Service Bus in Azure)."""

    def send(self, message: QueueMessage) -> None:
        """Enqueue durably; a message id seen within the duplicate window is dropped. QueueUnavailable on failure."""
        ...


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A delivery the queue gave up on: the message as it was, why, and how often it was delivered."""

    message: QueueMessage
    reason: str
    delivery_count: int
    enqueued_at: datetime


@runtime_checkable  # the composition root asks whether the queue it built keeps readable dead letters
class DeadLetters(Protocol):
    """The queue's dead letters, and sending them back (Service Bus's dead-letter sub-queue, locally LocalQueue).

    A replay goes through the same idempotent processing as any delivery, as source
    "replay": one already applied changes nothing. QueueUnavailable when the queue fails.
    """

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The oldest `limit` dead letters, oldest first."""
        ...

    def replay(self, message_id: str) -> bool:
        """Send dead letter `message_id` back to the queue with source "replay"; False if there is none."""
        ...
