"""Deliveries given up on, of both kinds, and sending them back through processing.

    dead-lettered   the queue's dead letters: what the broker gave up on (Service Bus's
                    dead-letter sub-queue after its max delivery count; locally also every
                    permanent failure, which the local runner dead-letters)
    failed          delivery records whose status is FAILED: a permanent processing error
                    (unverifiable event, a 4xx from the API, our re-sends used up). In
                    Azure the message is then completed, so this is the only trace.

One operation that is both is shown and replayed once, as its dead letter (replaying
the dead letter also removes it from the broker). A failed record is replayed by
sending its stored payload back to the queue: session = subscription id, source
"replay", and a new message id, `<operation id>:replay:<attempts>`, which Service Bus
duplicate detection lets through once per failure (a second replay before the first is
processed is dropped, which is what we want). Processing keys everything by the
operation id in the body, so it goes through the same idempotent path: a replay of
something applied meanwhile changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from lifecycle.domain.records import DeliveryRecord
from lifecycle.errors import InvalidPayload
from lifecycle.parsing import load_json, parse_webhook
from lifecycle.ports import DeadLetter, DeadLetters, Queue, QueueMessage, SubscriptionStore


class Kind(StrEnum):
    DEAD_LETTERED = "dead-lettered"
    FAILED = "failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class GivenUp:
    """One delivery given up on, as ops read it."""

    kind: Kind
    message_id: str  # the dead letter's message id; for a failed record, its operation id
    subscription_id: str
    operation_id: str
    action: str
    reason: str
    attempt: int  # dead-lettered: our own re-sends; failed: processing attempts recorded
    deliveries: int  # dead-lettered: the broker's deliveries; failed: 0 (the broker kept nothing)
    enqueued_at: datetime  # dead-lettered: when it was enqueued; failed: when it failed
    source: str  # "webhook" or "replay" for a dead letter; "" for a failed record (not kept)


class DeadLetterService:
    """Lists and replays deliveries given up on; `dead_letters` None: a queue that keeps none readable."""

    def __init__(self, store: SubscriptionStore, queue: Queue, dead_letters: DeadLetters | None) -> None:
        self._store = store
        self._queue = queue
        self._dead_letters = dead_letters

    def list(self, limit: int = 100) -> list[GivenUp]:
        """Up to `limit` of each kind, one entry per operation, oldest first."""
        dead = [] if self._dead_letters is None else [_dead(d) for d in self._dead_letters.dead_letters(limit)]
        seen = {(d.subscription_id, d.operation_id) for d in dead}
        records = [_failed(r) for r in self._store.failed_deliveries(limit)
                   if (r.subscription_id, r.operation_id) not in seen]
        return sorted(dead + records, key=lambda given_up: given_up.enqueued_at)

    def replay(self, given_up: GivenUp) -> bool:
        """Send one back through processing; False if it is no longer there to replay."""
        if given_up.kind is Kind.DEAD_LETTERED:
            return self._dead_letters is not None and self._dead_letters.replay(given_up.message_id)
        record = self._store.delivery(given_up.subscription_id, given_up.operation_id)
        if record is None or record.status.is_final or not record.payload:
            return False  # processed meanwhile, or nothing kept to send
        self._queue.send(QueueMessage(
            session_id=record.subscription_id,
            message_id=f"{record.operation_id}:replay:{record.attempts}",
            body=record.payload,
            source="replay",
        ))
        return True


def _dead(dead: DeadLetter) -> GivenUp:
    message = dead.message
    try:
        event = parse_webhook(load_json(message.body))
        operation_id, action = event.operation_id, event.action.value
    except InvalidPayload:
        operation_id, action = "", "(not a webhook)"
    return GivenUp(kind=Kind.DEAD_LETTERED, message_id=message.message_id, subscription_id=message.session_id,
                   operation_id=operation_id, action=action, reason=dead.reason, attempt=message.attempt,
                   deliveries=dead.delivery_count, enqueued_at=dead.enqueued_at, source=message.source)


def _failed(record: DeliveryRecord) -> GivenUp:
    return GivenUp(kind=Kind.FAILED, message_id=record.operation_id, subscription_id=record.subscription_id,
                   operation_id=record.operation_id, action=record.action, reason=record.reason,
                   attempt=record.attempts, deliveries=0, enqueued_at=record.updated_at, source="")
