"""FakeSubscriptionStore: the SubscriptionStore port in memory, held to the table store's contract.

Rows go through the same codec and key layout as TableSubscriptionStore, so a value the
real store would refuse or normalise (a naive datetime, an odd id) behaves the same here.
ETags are counters. The contract tests in tests/contract run against both.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from lifecycle.domain.fingerprint import Fingerprinted
from lifecycle.domain.history import HistoryEntry
from lifecycle.domain.model import Subscription
from lifecycle.domain.reconcile_runs import RunRecord, Tombstone
from lifecycle.domain.records import Commit, DeliveryRecord, Snapshot
from lifecycle.errors import ConcurrencyConflict, StorageUnavailable
from lifecycle.ports import Hit, Lookup, Reindexed
from lifecycle.store import codec, failed, index, keys, ledger

Entity = dict[str, Any]


class FakeSubscriptionStore:
    """In-memory store for unit tests, with fault injection for the transient paths.

    `fail_next_calls(n)` makes the next n calls (any method) raise StorageUnavailable;
    `conflict_on_next_commit()` makes the next commit raise ConcurrencyConflict. A failed
    call writes nothing, as a failed transaction would.
    """

    def __init__(self, *, index_margin: timedelta = index.MARGIN) -> None:
        self._partitions: dict[str, dict[str, Entity]] = {}
        self._etags: dict[str, str] = {}  # partition key -> the state row's ETag
        # The service's write times (its Timestamp): of state rows by partition, of index rows by key.
        self._state_written: dict[str, datetime] = {}
        self._index_written: dict[index.Key, datetime] = {}
        self._index_margin = index_margin
        self._index: dict[str, dict[str, Entity]] = {}  # the index table: partition -> row key -> entity
        self._counter = itertools.count(1)
        self._ticks = itertools.count(1)
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
            key = keys.escape_key(subscription_id)
            entity = self._partitions.get(key, {}).get(keys.STATE_ROW)
            if entity is None:
                return None
            subscription, version = codec.decode_state(entity)
            return Snapshot(subscription, etag=self._etags[key], version=version, written_at=self._state_written[key])

    def commit(self, commit: Commit) -> Snapshot:
        rows = codec.encode_commit(commit)
        key = rows.state["PartitionKey"]
        with self._lock:
            self._check_available()
            if self._conflict_next_commit:
                self._conflict_next_commit = False
                raise ConcurrencyConflict("commit: injected conflict")
            # As the table store does: the rows the new state needs go first, even if the commit then fails.
            new = index.keys(commit.subscription)
            old = frozenset() if commit.expected is None else index.keys(commit.expected.subscription)
            for index_key in new - old:
                self._put_index(index.encode(index_key, commit.subscription.id, rows.version))
            self._failed_before_write(commit.delivery)
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
            self._state_written[key] = self._server_time()
            self._failed_after_write(commit.delivery)
            self.commits += 1
            return Snapshot(commit.subscription, etag=etag, version=rows.version)

    def delivery(self, subscription_id: str, operation_id: str) -> DeliveryRecord | None:
        with self._lock:
            self._check_available()
            partition = self._partitions.get(keys.escape_key(subscription_id), {})
            entity = partition.get(keys.delivery_row(operation_id))
            return None if entity is None else codec.decode_delivery(entity)

    def record_delivery(self, record: DeliveryRecord) -> DeliveryRecord:
        entity = codec.encode_delivery(record)
        with self._lock:
            self._check_available()
            self._failed_before_write(record)
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
            self._failed_before_write(record)
            self._partitions.setdefault(entity["PartitionKey"], {})[entity["RowKey"]] = _stored(entity)
            self._failed_after_write(record)

    def failed_deliveries(self, limit: int = 100) -> Iterator[DeliveryRecord]:
        with self._lock:
            self._check_available()
            rows = self._index.get(failed.PARTITION, {})
            hits = [failed.decode(rows[row_key])[:2] for row_key in sorted(rows)]
        found = 0
        for subscription_id, operation_id in hits:
            record = self.delivery(subscription_id, operation_id)
            if record is not None and failed.needs_row(record) and found < limit:
                found += 1
                yield record

    def drop_failed_row(self, subscription_id: str, operation_id: str) -> bool:
        """Lose one failed delivery's index row (an index written before this version had none)."""
        with self._lock:
            partition_key, row_key = failed.key(subscription_id, operation_id)
            return self._index.get(partition_key, {}).pop(row_key, None) is not None

    def _failed_before_write(self, record: DeliveryRecord | None) -> None:
        if record is not None and failed.needs_row(record):
            self._put_index(failed.encode(record))

    def _failed_after_write(self, record: DeliveryRecord | None) -> None:
        if record is not None and failed.may_end_a_failure(record):
            partition_key, row_key = failed.key(record.subscription_id, record.operation_id)
            self._index.get(partition_key, {}).pop(row_key, None)

    def history(self, subscription_id: str) -> list[HistoryEntry]:
        with self._lock:
            self._check_available()
            partition = self._partitions.get(keys.escape_key(subscription_id), {})
            rows = sorted(k for k in partition if keys.HISTORY_PREFIX <= k < keys.HISTORY_END)
            return [codec.decode_history(partition[k]) for k in rows]

    def subscriptions(self) -> Iterator[Subscription]:
        # A generator, like the table store's: nothing happens (not even a failure) until iterated.
        with self._lock:
            self._check_available()
            states = [p[keys.STATE_ROW] for _, p in sorted(self._partitions.items()) if keys.STATE_ROW in p]
        for entity in states:
            yield codec.decode_state(entity)[0]

    def fingerprints(self, shard: int, shards: int) -> Iterator[Fingerprinted]:
        low, high = keys.shard_bounds(shard, shards)
        with self._lock:
            self._check_available()
            states = [p[keys.STATE_ROW] for k, p in sorted(self._partitions.items())
                      if keys.STATE_ROW in p and (low is None or k >= low) and (high is None or k < high)]
        for entity in states:  # as the table store selects them: a column the codec forgets is missing here too
            yield codec.decode_fingerprinted({name: entity[name] for name in codec.SCAN_COLUMNS if name in entity})

    def find(self, lookup: Lookup | None, *, after: str = "", limit: int = 100) -> list[Hit]:
        with self._lock:
            self._check_available()
            if lookup is None:
                found = sorted(k for k, p in self._partitions.items() if k > after and keys.STATE_ROW in p)[:limit]
                return [Hit(k, codec.decode_state(self._partitions[k][keys.STATE_ROW])[0]) for k in found]
            partition, upper = index.bounds(lookup)
            rows = self._index.get(partition, {})
            found = sorted(k for k in rows if k > after and (upper is None or k < upper))[:limit]
            hits = []
            read = [(row_key, index.decode(rows[row_key])[0], self._index_written.get((partition, row_key)))
                    for row_key in found]  # the rows first, then their states: the table store's order
            for row_key, subscription_id, written_at in read:
                snapshot = self.load(subscription_id)
                verdict = index.judge((partition, row_key), written_at, snapshot, self._index_margin)
                current = snapshot.subscription if snapshot is not None and verdict is index.Verdict.CURRENT else None
                hits.append(Hit(row_key, current))
                # Removed by the query that meets it, as the table store does: only if unchanged since read.
                if verdict is index.Verdict.STALE and self._index_written.get((partition, row_key)) == written_at:
                    del rows[row_key]
            return hits

    def reindex(self) -> Reindexed:
        with self._lock:
            self._check_available()
            states = [codec.decode_state(p[keys.STATE_ROW]) for p in self._partitions.values() if keys.STATE_ROW in p]
            wanted = {key: (sub.id, version) for sub, version in states for key in index.keys(sub)}
            written = {sub.id: self._state_written[keys.escape_key(sub.id)] for sub, _ in states}
            removed = 0
            for partition_key, rows in self._index.items():
                if partition_key == failed.PARTITION:
                    continue  # rebuilt from the delivery records below, as the table store does
                for row_key in [k for k in rows if (partition_key, k) not in wanted]:
                    subscription_id, _ = index.decode(rows[row_key])
                    row_written = self._index_written.get((partition_key, row_key))
                    if subscription_id in written and index.obsolete(row_written, written[subscription_id],
                                                                     self._index_margin):  # as the table store
                        del rows[row_key]
                        removed += 1
            missing = {key: owner for key, owner in wanted.items() if key[1] not in self._index.get(key[0], {})}
            for key, (subscription_id, version) in missing.items():
                self._put_index(index.encode(key, subscription_id, version))
            failed_written, failed_gone = self._reindex_failed()
            return Reindexed(subscriptions=len(states), written=len(missing) + failed_written,
                             removed=removed + failed_gone)

    def _reindex_failed(self) -> tuple[int, int]:
        records = [codec.decode_delivery(row) for partition in self._partitions.values()
                   for key, row in partition.items() if key.startswith(keys.DELIVERY_PREFIX)]
        wanted = {failed.key(r.subscription_id, r.operation_id): r for r in records if failed.needs_row(r)}
        rows = self._index.setdefault(failed.PARTITION, {})
        removed = 0
        for row_key in [k for k in rows if (failed.PARTITION, k) not in wanted]:
            subscription_id, operation_id, failed_at = failed.decode(rows[row_key])
            if failed.outdated(failed_at, self.delivery(subscription_id, operation_id)):
                del rows[row_key]
                removed += 1
        missing = [record for key, record in wanted.items() if key[1] not in rows]
        for record in missing:
            self._put_index(failed.encode(record))
        return len(missing), removed

    def drop_index_row(self, subscription_id: str) -> int:
        """Lose every index row of one subscription, as a crash between commit and index write could."""
        with self._lock:
            row = keys.escape_key(subscription_id)
            lost = [(p, k) for p, rows in self._index.items() for k in rows if k == row or k.endswith("|" + row)]
            for partition_key, row_key in lost:
                del self._index[partition_key][row_key]
            return len(lost)

    def index_row_keys(self, partition: str) -> set[str]:
        """The row keys of one index partition, as a test reads the index table around the store."""
        with self._lock:
            return set(self._index.get(partition, {}))

    def _put_index(self, entity: Entity) -> None:
        self._index.setdefault(entity["PartitionKey"], {})[entity["RowKey"]] = _stored(entity)
        self._index_written[(entity["PartitionKey"], entity["RowKey"])] = self._server_time()

    def _server_time(self) -> datetime:
        """The service's clock: every write strictly later than the one before."""
        return _EPOCH + timedelta(microseconds=next(self._ticks))

    def save_run(self, run: RunRecord) -> None:
        self._put(ledger.encode_run(run))

    def runs(self, limit: int = 10) -> list[RunRecord]:
        entities = self._ledger(ledger.RUN_PREFIX, ledger.RUN_END)
        return [ledger.decode_run(entity) for entity in entities[: max(limit, 0)]]

    def tombstone(self, tombstone: Tombstone) -> None:
        self._put(ledger.encode_tombstone(tombstone))

    def untombstone(self, subscription_id: str) -> None:
        with self._lock:
            self._check_available()
            self._partitions.get(ledger.LEDGER_PARTITION, {}).pop(ledger.tombstone_row(subscription_id), None)

    def tombstones(self) -> Iterator[Tombstone]:
        for entity in self._ledger(ledger.TOMBSTONE_PREFIX, ledger.TOMBSTONE_END):
            yield ledger.decode_tombstone(entity)

    def acquire_lease(self, name: str, owner: str, *, now: datetime, ttl: timedelta) -> bool:
        entity = ledger.encode_lease(name, owner, now + ttl)
        with self._lock:  # one lock stands in for the table store's create-or-ETag-guarded update
            self._check_available()
            current = self._partitions.get(ledger.LEDGER_PARTITION, {}).get(entity["RowKey"])
            if current is not None:
                holder, expires_at = ledger.decode_lease(current)
                if holder != owner and expires_at > now:
                    return False
            self._partitions.setdefault(ledger.LEDGER_PARTITION, {})[entity["RowKey"]] = _stored(entity)
            return True

    def release_lease(self, name: str, owner: str) -> None:
        with self._lock:
            self._check_available()
            rows = self._partitions.get(ledger.LEDGER_PARTITION, {})
            current = rows.get(ledger.lease_row(name))
            if current is not None and ledger.decode_lease(current)[0] == owner:
                del rows[ledger.lease_row(name)]

    def _put(self, entity: Entity) -> None:
        with self._lock:
            self._check_available()
            self._partitions.setdefault(entity["PartitionKey"], {})[entity["RowKey"]] = _stored(entity)

    def _ledger(self, first: str, end: str) -> list[Entity]:
        # Key order, like the table's: newest run first, tombstones by id.
        with self._lock:
            self._check_available()
            rows = self._partitions.get(ledger.LEDGER_PARTITION, {})
            return [rows[key] for key in sorted(rows) if first <= key < end]

    def _check_available(self) -> None:
        if self._failures > 0:
            self._failures -= 1
            raise StorageUnavailable("injected storage failure")


_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def _stored(entity: Entity) -> Entity:
    # The SDK leaves None-valued properties out of the entity; so must we.
    return {name: value for name, value in entity.items() if value is not None}
