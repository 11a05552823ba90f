"""What the dispatcher sees of an outbox: the subscriptions listed as having pending events,
each one's backlog, and the promise an outbox keeps when a listing is released.

The listing is how a dispatch pass finds work without scanning every event ever sent: a
writer lists the subscription *before* writing its event, and a release removes the listing
only if no event was written since the backlog was read (the outbox fences it), so an
event is never left pending without a listing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

PENDING, DELIVERED = "pending", "delivered"


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxEntry:
    """One event on its way to the product."""

    subscription_id: str
    sequence: int
    event_id: str
    type: str
    body: str
    created_at: datetime
    status: str = PENDING
    attempts: int = 0
    last_error: str = ""
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    etag: str = ""


@dataclass(frozen=True, slots=True)
class Listing:
    """A subscription listed as having pending events; `etag` changes whenever a writer lists it again."""

    subscription_id: str
    etag: str


@dataclass(frozen=True, slots=True)
class Backlog:
    """One subscription's pending events in order, and the version of its sequence they were read at."""

    subscription_id: str
    entries: tuple[OutboxEntry, ...]
    version: str  # the sequence head's ETag ("" before the first event): a write since changes it


class Outbox(Protocol):
    """The dispatcher's side of an outbox (TableOutbox; the fake in the tests)."""

    def listings(self) -> Iterator[Listing]:
        """Every subscription listed as having pending events (paged, never a scan of events)."""
        ...

    def backlog(self, subscription_id: str) -> Backlog:
        """The pending events of one subscription, in sequence order."""
        ...

    def mark_delivered(self, entry: OutboxEntry) -> None:
        """Raises ConcurrencyConflict if another dispatcher changed the row since it was read."""
        ...

    def mark_failed(self, entry: OutboxEntry, error: str, next_attempt_at: datetime) -> OutboxEntry: ...

    def release(self, listing: Listing, backlog: Backlog) -> bool:
        """Unlist a subscription whose `backlog` was all delivered; False (still listed) if an
        event was written or the subscription listed again since they were read."""
        ...
