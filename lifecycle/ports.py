"""Ports: one small Protocol per outside system. Adapters are named for their technology.

Fakes for unit tests live in the `tests/fakes` package; contract tests hold each fake to the
same assertions as its real adapter.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol, runtime_checkable

from lifecycle.domain.events import ChangePlan, ChangeQuantity
from lifecycle.domain.fingerprint import Fingerprinted, Listed
from lifecycle.domain.history import ChangeKind, HistoryEntry
from lifecycle.domain.model import Operation, Plan, ResolvedPurchase, Subscription
from lifecycle.domain.reconcile_runs import RunRecord, Tombstone
from lifecycle.domain.records import Commit, DeliveryRecord, Snapshot


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class Indexed(StrEnum):
    """The fields the ops index finds subscriptions by (see lifecycle.store.index)."""

    STATUS = "status"
    OFFER = "offer"
    PLAN = "plan"
    TENANT = "tenant"  # the beneficiary's tenant
    PURCHASER = "purchaser"  # the purchaser's tenant
    FREE_TRIAL = "trial"  # only the true side is indexed
    TEST = "test"  # only the true side is indexed
    RENEWAL = "renewal"  # autoRenew off, ordered by term end


@dataclass(frozen=True, slots=True)
class Lookup:
    """Subscriptions whose `field` is `value`; for RENEWAL, those whose term ends on or before
    `value` (an ISO date)."""

    field: Indexed
    value: str


@dataclass(frozen=True, slots=True)
class Hit:
    """One subscription found, in key order: `key` is where the next page resumes (opaque),
    `subscription` its current state (None: the index row is stale or its subscription gone)."""

    key: str
    subscription: Subscription | None


@dataclass(frozen=True, slots=True)
class Reindexed:
    """What rebuilding the index did."""

    subscriptions: int
    written: int
    removed: int


class SubscriptionStore(Protocol):
    """Current state, append-only history and delivery records, one partition per subscription.

    Raises ConcurrencyConflict when a commit's expected snapshot is no longer current,
    StorageUnavailable when the storage fails; a failed commit writes nothing.
    """

    def load(self, subscription_id: str) -> Snapshot | None:
        """The current state, or None if this subscription is unknown here."""
        ...

    def commit(self, commit: Commit) -> Snapshot:
        """Write state, history and delivery record in one transaction; the new snapshot."""
        ...

    def delivery(self, subscription_id: str, operation_id: str) -> DeliveryRecord | None:
        ...

    def record_delivery(self, record: DeliveryRecord) -> DeliveryRecord:
        """Insert the record unless one exists; either way return the stored one."""
        ...

    def update_delivery(self, record: DeliveryRecord) -> None:
        """Replace a delivery record (attempts, a failure reason) outside a state change."""
        ...

    def failed_deliveries(self, limit: int = 100) -> Iterator[DeliveryRecord]:
        """Up to `limit` delivery records whose status is FAILED, across subscriptions, streamed
        in key order (subscription, then operation); read from an index, never a table scan."""
        ...

    def history(self, subscription_id: str) -> list[HistoryEntry]:
        """Every history entry, newest first."""
        ...

    def subscriptions(self) -> Iterator[Subscription]:
        """Every stored subscription, streamed."""
        ...

    def fingerprints(self, shard: int, shards: int) -> Iterator[Fingerprinted]:
        """The stored subscriptions of one key range of `shards` (each is in exactly one), streamed,
        each reduced to what a reconciliation scan compares (never decoded whole).

        Whole-table passes read several shards at once; ValueError for an impossible shard.
        """
        ...

    # Reconciliation's own records, kept apart from every subscription's partition.

    def save_run(self, run: RunRecord) -> None:
        """Insert or replace a run record (the same run id and start time replace)."""
        ...

    def runs(self, limit: int = 10) -> list[RunRecord]:
        """The last `limit` runs, newest first."""
        ...

    def tombstone(self, tombstone: Tombstone) -> None:
        """Mark a subscription as deleted here on purpose: reconciliation leaves it alone."""
        ...

    def untombstone(self, subscription_id: str) -> None:
        """Remove a tombstone; nothing happens if there is none."""
        ...

    def tombstones(self) -> Iterator[Tombstone]:
        """Every tombstone, streamed."""
        ...

    def acquire_lease(self, name: str, owner: str, *, now: datetime, ttl: timedelta) -> bool:
        """Hold lease `name` until now + ttl if it is free, expired or already `owner`'s (renewal)."""
        ...

    def release_lease(self, name: str, owner: str) -> None:
        """Give the lease up if `owner` still holds it."""
        ...

    # The ops index: cross-subscription questions without reading every partition.

    def find(self, lookup: Lookup | None, *, after: str = "", limit: int = 100) -> list[Hit]:
        """Up to `limit` subscriptions of the index `lookup` names (None: every one), in key
        order after `after`, each with its current state; fewer than `limit`: the end.

        A hit whose index row the state no longer explains (obsolete, or written for a commit
        not made) comes without a state; an obsolete row is removed as it is met. A state may
        still miss a filter the index does not hold exactly (case, dates): callers judge it.
        """
        ...

    def reindex(self) -> Reindexed:
        """Rebuild the index from the state rows: write missing rows, remove stale ones."""
        ...


class MarketplaceApi(Protocol):
    """The SaaS Fulfillment API v2. Errors come from the tree in `lifecycle.errors`."""

    def resolve(self, marketplace_token: str) -> ResolvedPurchase: ...

    def activate(self, subscription_id: str, plan_id: str, quantity: int | None = None) -> None: ...

    def list_subscriptions(self) -> Iterator[list[Listed]]:
        """Page by page, following `@nextLink` until it is absent; each item is fingerprinted
        and checked as it is read, and parsed whole only when asked (`Listed.parse`)."""
        ...

    def get_subscription(self, subscription_id: str) -> Subscription: ...

    def list_available_plans(self, subscription_id: str) -> list[Plan]: ...

    def change_plan(self, subscription_id: str, plan_id: str) -> str:
        """PATCH the plan; the operation id from `Operation-Location`."""
        ...

    def change_quantity(self, subscription_id: str, quantity: int) -> str: ...

    def delete_subscription(self, subscription_id: str) -> str: ...

    def list_operations(self, subscription_id: str) -> list[Operation]: ...

    def get_operation(self, subscription_id: str, operation_id: str) -> Operation: ...

    def update_operation(self, subscription_id: str, operation_id: str, *, success: bool) -> None: ...


class Product(Protocol):
    """The publisher's own SaaS product, told of every applied change."""

    def notify(self, change: ChangeKind, subscription: Subscription, *, operation_id: str) -> None: ...


@dataclass(frozen=True, slots=True)
class ProductAnswer:
    """The product's verdict on a proposed plan or quantity change."""

    accept: bool
    reason: str = ""


class ProductVeto(Protocol):
    """The publisher's product, asked inside the webhook's window whether it accepts a change."""

    def review(
        self, event: ChangePlan | ChangeQuantity, subscription: Subscription, *, timeout: float
    ) -> ProductAnswer:
        """Its answer within `timeout` seconds, or the configured default; never raises."""
        ...


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
