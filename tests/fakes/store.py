"""FakeSubscriptionStore: the SubscriptionStore port in memory, held to the table store's contract.

Rows go through the same codec and key layout as TableSubscriptionStore, so a value the
real store would refuse or normalise (a naive datetime, an odd id) behaves the same here.
ETags are counters. The contract tests in tests/contract run against both.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from lifecycle.domain.history import HistoryEntry
from lifecycle.domain.model import Subscription
from lifecycle.domain.reconcile import RunRecord, Tombstone
from lifecycle.domain.records import Commit, DeliveryRecord, Snapshot
from lifecycle.errors import ConcurrencyConflict, StorageUnavailable
from lifecycle.store import codec

Entity = dict[str, Any]


class FakeSubscriptionStore:
    """In-memory store for unit tests, with fault injection for the transient paths.

    `fail_next_calls(n)` makes the next n calls (any method) raise StorageUnavailable;
    `conflict_on_next_commit()` makes the next commit raise ConcurrencyConflict. A failed
    call writes nothing, as a failed transaction would.
    """

    def __init__(self) -> None:
        self._partitions: dict[str, dict[str, Entity]] = {}
        self._etags: dict[str, str] = {}  # partition key -> the state row's ETag
        self._counter = itertools.count(1)
        self._lock = threading.RLock()  # the processing service may be driven from several threads
        self._failures = 0
        self._conflict_next_commit = False
        self.commits = 0  # commits that succeeded, for tests that count writes

    def fail_next_calls(self, calls: int = 1) -> None:
        self._failures = calls

    def conflict_on_next_commit(self) -> None:
        self._conflict_next_commit = True

    def load(self, subscription_id: str) -> Snapshot | None:
        with self._lock:
            self._check_available()
            key = codec.escape_key(subscription_id)
            entity = self._partitions.get(key, {}).get(codec.STATE_ROW)
            if entity is None:
                return None
            subscription, version = codec.decode_state(entity)
            return Snapshot(subscription, etag=self._etags[key], version=version)

    def commit(self, commit: Commit) -> Snapshot:
        rows = codec.encode_commit(commit)
        key = rows.state["PartitionKey"]
        with self._lock:
            self._check_available()
            if self._conflict_next_commit:
                self._conflict_next_commit = False
                raise ConcurrencyConflict("commit: injected conflict")
            current = self._etags.get(key)
            expected = None if commit.expected is None else commit.expected.etag
            if current != expected:
                raise ConcurrencyConflict(f"commit: the row changed or already exists ({current} != {expected})")
            partition = self._partitions.setdefault(key, {})
            if any(row["RowKey"] in partition for row in rows.history):
                raise ConcurrencyConflict("commit: a history row already exists")
            for row in (rows.state, *rows.history, rows.delivery):
                if row is not None:
                    partition[row["RowKey"]] = _stored(row)
            etag = self._etags[key] = f'W/"{next(self._counter)}"'
            self.commits += 1
            return Snapshot(commit.subscription, etag=etag, version=rows.version)

    def delivery(self, subscription_id: str, operation_id: str) -> DeliveryRecord | None:
        with self._lock:
            self._check_available()
            partition = self._partitions.get(codec.escape_key(subscription_id), {})
            entity = partition.get(codec.delivery_row(operation_id))
            return None if entity is None else codec.decode_delivery(entity)

    def record_delivery(self, record: DeliveryRecord) -> DeliveryRecord:
        entity = codec.encode_delivery(record)
        with self._lock:
            self._check_available()
            partition = self._partitions.setdefault(entity["PartitionKey"], {})
            stored = partition.get(entity["RowKey"])
            if stored is not None:
                return codec.decode_delivery(stored)
            partition[entity["RowKey"]] = _stored(entity)
            return record

    def update_delivery(self, record: DeliveryRecord) -> None:
        entity = codec.encode_delivery(record)
        with self._lock:
            self._check_available()
            self._partitions.setdefault(entity["PartitionKey"], {})[entity["RowKey"]] = _stored(entity)

    def history(self, subscription_id: str) -> list[HistoryEntry]:
        with self._lock:
            self._check_available()
            partition = self._partitions.get(codec.escape_key(subscription_id), {})
            keys = sorted(k for k in partition if codec.HISTORY_PREFIX <= k < codec.HISTORY_END)
            return [codec.decode_history(partition[k]) for k in keys]

    def subscriptions(self) -> Iterator[Subscription]:
        # A generator, like the table store's: nothing happens (not even a failure) until iterated.
        with self._lock:
            self._check_available()
            states = [p[codec.STATE_ROW] for _, p in sorted(self._partitions.items()) if codec.STATE_ROW in p]
        for entity in states:
            yield codec.decode_state(entity)[0]

    def subscription_shard(self, shard: int, shards: int) -> Iterator[Subscription]:
        low, high = codec.shard_bounds(shard, shards)
        for subscription in self.subscriptions():
            key = codec.escape_key(subscription.id)
            if (low is None or key >= low) and (high is None or key < high):
                yield subscription

    def save_run(self, run: RunRecord) -> None:
        self._put(codec.encode_run(run))

    def runs(self, limit: int = 10) -> list[RunRecord]:
        entities = self._ledger(codec.RUN_PREFIX, codec.RUN_END)
        return [codec.decode_run(entity) for entity in entities[: max(limit, 0)]]

    def tombstone(self, tombstone: Tombstone) -> None:
        self._put(codec.encode_tombstone(tombstone))

    def untombstone(self, subscription_id: str) -> None:
        with self._lock:
            self._check_available()
            self._partitions.get(codec.LEDGER_PARTITION, {}).pop(codec.tombstone_row(subscription_id), None)

    def tombstones(self) -> Iterator[Tombstone]:
        for entity in self._ledger(codec.TOMBSTONE_PREFIX, codec.TOMBSTONE_END):
            yield codec.decode_tombstone(entity)

    def acquire_lease(self, name: str, owner: str, *, now: datetime, ttl: timedelta) -> bool:
        entity = codec.encode_lease(name, owner, now + ttl)
        with self._lock:  # one lock stands in for the table store's create-or-ETag-guarded update
            self._check_available()
            current = self._partitions.get(codec.LEDGER_PARTITION, {}).get(entity["RowKey"])
            if current is not None:
                holder, expires_at = codec.decode_lease(current)
                if holder != owner and expires_at > now:
                    return False
            self._partitions.setdefault(codec.LEDGER_PARTITION, {})[entity["RowKey"]] = _stored(entity)
            return True

    def release_lease(self, name: str, owner: str) -> None:
        with self._lock:
            self._check_available()
            ledger = self._partitions.get(codec.LEDGER_PARTITION, {})
            current = ledger.get(codec.lease_row(name))
            if current is not None and codec.decode_lease(current)[0] == owner:
                del ledger[codec.lease_row(name)]

    def _put(self, entity: Entity) -> None:
        with self._lock:
            self._check_available()
            self._partitions.setdefault(entity["PartitionKey"], {})[entity["RowKey"]] = _stored(entity)

    def _ledger(self, first: str, end: str) -> list[Entity]:
        # Key order, like the table's: newest run first, tombstones by id.
        with self._lock:
            self._check_available()
            ledger = self._partitions.get(codec.LEDGER_PARTITION, {})
            return [ledger[key] for key in sorted(ledger) if first <= key < end]

    def _check_available(self) -> None:
        if self._failures > 0:
            self._failures -= 1
            raise StorageUnavailable("injected storage failure")


def _stored(entity: Entity) -> Entity:
    # The SDK leaves None-valued properties out of the entity; so must we.
    return {name: value for name, value in entity.items() if value is not None}
