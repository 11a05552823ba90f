"""An in-memory product port and outbox: events per subscription, in order, each id once,
and the listing of subscriptions with pending events (as TableOutbox; the contract tests
hold both to the same promises)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime

from lifecycle.clock import SystemClock
from lifecycle.domain.history import ChangeKind
from lifecycle.domain.model import Subscription
from lifecycle.errors import ConcurrencyConflict
from lifecycle.ports import Clock
from lifecycle.product.backlog import DELIVERED, PENDING, Backlog, Listing, OutboxEntry
from lifecycle.product.events import build_event


class FakeProduct:
    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()
        self.bodies: dict[str, list[dict[str, object]]] = {}
        self._ids: set[str] = set()
        self._entries: dict[str, list[OutboxEntry]] = {}
        self._listed: dict[str, str] = {}  # subscription id -> the listing's etag
        self._versions: dict[str, str] = {}  # subscription id -> its sequence head's etag
        self._etags = (str(n) for n in itertools.count(1))

    def notify(self, change: ChangeKind, subscription: Subscription, *, operation_id: str) -> None:
        now = self._clock.now()
        event = build_event(change, subscription, operation_id=operation_id, at=now)
        if event.id in self._ids:
            return
        self._listed[subscription.id] = next(self._etags)  # listed before the event, as TableOutbox
        self._ids.add(event.id)
        self.bodies.setdefault(subscription.id, []).append(json.loads(event.body))
        entries = self._entries.setdefault(subscription.id, [])
        entries.append(OutboxEntry(subscription_id=subscription.id, sequence=len(entries) + 1, event_id=event.id,
                                   type=event.type, body=event.body, created_at=now, next_attempt_at=now,
                                   etag=next(self._etags)))
        self._versions[subscription.id] = next(self._etags)

    def types(self, subscription_id: str) -> list[str]:
        return [str(body["type"]) for body in self.bodies.get(subscription_id, [])]

    # The dispatcher's side.

    def listings(self) -> Iterator[Listing]:
        yield from [Listing(sid, etag) for sid, etag in sorted(self._listed.items())]

    def backlog(self, subscription_id: str) -> Backlog:
        pending = tuple(e for e in self._entries.get(subscription_id, []) if e.status == PENDING)
        return Backlog(subscription_id, pending, self._versions.get(subscription_id, ""))

    def events(self, subscription_id: str) -> list[OutboxEntry]:
        return list(self._entries.get(subscription_id, []))

    def mark_delivered(self, entry: OutboxEntry) -> None:
        self._replace(replace(entry, status=DELIVERED, attempts=entry.attempts + 1, last_error="",
                              next_attempt_at=None, delivered_at=self._clock.now()))

    def mark_failed(self, entry: OutboxEntry, error: str, next_attempt_at: datetime) -> OutboxEntry:
        return self._replace(replace(entry, attempts=entry.attempts + 1, last_error=error[:1000],
                                     next_attempt_at=next_attempt_at))

    def release(self, listing: Listing, backlog: Backlog) -> bool:
        sid = listing.subscription_id
        if self._versions.get(sid, "") != backlog.version or self._listed.get(sid) != listing.etag:
            return False
        self._versions[sid] = next(self._etags)  # the fence
        del self._listed[sid]
        return True

    def _replace(self, entry: OutboxEntry) -> OutboxEntry:
        entries = self._entries[entry.subscription_id]
        if entries[entry.sequence - 1].etag != entry.etag:
            raise ConcurrencyConflict(f"outbox event {entry.event_id} changed since it was read")
        entries[entry.sequence - 1] = stored = replace(entry, etag=next(self._etags))
        return stored
