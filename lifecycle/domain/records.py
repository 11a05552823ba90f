"""What the store keeps besides the state: delivery records and a change to commit."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from lifecycle.domain.history import HistoryEntry
from lifecycle.domain.model import Subscription


class DeliveryStatus(StrEnum):
    RECEIVED = "received"  # recorded by the webhook, waiting in the queue
    REJECTED = "rejected"  # refused inside the webhook request (4xx to the marketplace)
    APPLIED = "applied"  # processed: the decision is committed
    IGNORED = "ignored"  # processed, nothing to apply (unknown action, not applied, illegal)
    FAILED = "failed"  # permanent failure, reason kept; replayable by ops

    @property
    def is_final(self) -> bool:
        return self in (DeliveryStatus.APPLIED, DeliveryStatus.IGNORED, DeliveryStatus.REJECTED)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryRecord:
    """One operation's delivery, keyed by (subscription id, operation id)."""

    subscription_id: str
    operation_id: str
    action: str
    status: DeliveryStatus
    received_at: datetime
    updated_at: datetime
    activity_id: str = ""
    attempts: int = 0
    outcome: str = ""
    reason: str = ""
    payload: str = ""  # the webhook body as received (bounded), for replay and forensics


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A stored state with what guards its next write."""

    subscription: Subscription
    etag: str
    version: int  # number of history entries so far; the next one is version + 1
    # The storage service's time of that write, where it tells (for the ops index's read repair);
    # metadata, not part of what a snapshot is: two reads of one write are equal.
    written_at: datetime | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Commit:
    """Everything one decision writes, atomically: state, history lines, delivery record.

    `expected` is the snapshot the decision was made on (None: the subscription is new
    here); the store refuses the commit with ConcurrencyConflict if the row moved since.
    """

    subscription: Subscription
    expected: Snapshot | None
    history: tuple[HistoryEntry, ...] = ()
    delivery: DeliveryRecord | None = None
