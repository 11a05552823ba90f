"""The store port: subscription state, history, delivery records, reconciliation's records, the ops index."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from lifecycle.domain.fingerprint import Fingerprinted
from lifecycle.domain.history import HistoryEntry
from lifecycle.domain.model import Subscription
from lifecycle.domain.reconcile_runs import RunRecord, Tombstone
from lifecycle.domain.records import Commit, DeliveryRecord, Snapshot


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
