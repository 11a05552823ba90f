"""The ops index on Azure Table Storage: `{prefix}index`, kept beside the subscriptions table.

Why a second table and not index rows in each subscription's partition: a query must read
one partition per question ("status|Suspended"), and those rows cannot share an entity
group transaction with the state row anyway (a transaction is one partition). Why the rows
a new state needs are written before its commit, why obsolete rows are left for the next
query to remove, and how a reader judges every hit against the state row: `lifecycle.store.index`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from lifecycle.domain.model import Subscription
from lifecycle.domain.records import Commit, Snapshot
from lifecycle.logs import get_logger
from lifecycle.ports import Hit, Lookup, Reindexed
from lifecycle.store import failed, index

Load = Callable[[str], Snapshot | None]

# Parallel state reads per page: a page of 50 hits costs about 50/8 sequential reads.
READERS = 8


class TableIndex:
    """Index writes around a commit, index queries, and the rebuild."""

    def __init__(self, table: Callable[[], TableClient], load: Load, margin: timedelta) -> None:
        self._table = table
        self._load = load
        self._margin = margin  # see index.obsolete
        self._pool = ThreadPoolExecutor(READERS, thread_name_prefix="index-read")  # threads start on first use

    def close(self) -> None:
        self._pool.shutdown(wait=False)

    def before_commit(self, commit: Commit, version: int) -> None:
        """Write the rows the new state needs and its previous state lacked.

        Rows the new state makes obsolete are left: the next query that meets one removes it
        (`find`), so a commit costs one index write at most, never a delete as well.
        """
        new = index.keys(commit.subscription)
        old = frozenset() if commit.expected is None else index.keys(commit.expected.subscription)
        table = self._table() if new - old else None
        for key in new - old:
            assert table is not None
            table.upsert_entity(index.encode(key, commit.subscription.id, version), mode=UpdateMode.REPLACE)

    def find(self, lookup: Lookup, *, after: str, limit: int) -> list[Hit]:
        partition, upper = index.bounds(lookup)
        query = "PartitionKey eq @pk and RowKey gt @after" + (" and RowKey lt @upper" if upper else "")
        parameters = {"pk": partition, "after": after, "upper": upper}
        pages = self._table().query_entities(query, parameters=parameters, results_per_page=limit,
                                             select=["RowKey", "SubscriptionId", "Timestamp"])
        rows = list(itertools.islice(pages, limit))
        snapshots = list(self._pool.map(self._load, [row["SubscriptionId"] for row in rows]))
        hits: list[Hit] = []
        stale: list[tuple[str, Any]] = []
        for row, snapshot in zip(rows, snapshots, strict=True):
            verdict = index.judge((partition, row["RowKey"]), _written_at(row), snapshot, self._margin)
            current = snapshot.subscription if snapshot is not None and verdict is index.Verdict.CURRENT else None
            hits.append(Hit(row["RowKey"], current))
            if verdict is index.Verdict.STALE:
                stale.append((partition, row))
        list(self._pool.map(self._remove_stale, stale))  # waited for: the same query again must not meet them
        return hits

    def _remove_stale(self, found: tuple[str, Any]) -> None:
        partition, row = found
        try:
            # Only the row as read: a commit that has rewritten it since wants it kept.
            self._table().delete_entity(partition, row["RowKey"], etag=row.metadata["etag"],
                                        match_condition=MatchConditions.IfNotModified)
        except (ResourceModifiedError, ResourceNotFoundError):
            pass
        except AzureError as error:  # a query must not fail over housekeeping: the next one tries again
            get_logger("lifecycle.store").warning("index.stale_row_left", partition=partition,
                                                  error_type=type(error).__name__)

    def reindex(self, states: Iterator[tuple[Subscription, int, datetime | None]]) -> Reindexed:
        """Write every missing row, delete rows no state explains (by the rule of `index.obsolete`)."""
        wanted: dict[index.Key, tuple[str, int]] = {}
        written: dict[str, datetime | None] = {}
        for subscription, version, written_at in states:
            written[subscription.id] = written_at
            wanted.update((key, (subscription.id, version)) for key in index.keys(subscription))
        seen = len(written)
        table, removed = self._table(), 0
        for entity in table.list_entities(results_per_page=1000):
            key = (entity["PartitionKey"], entity["RowKey"])
            if key[0] == failed.PARTITION:
                continue  # failed deliveries' rows, rebuilt from the delivery records (`table_failed`)
            if wanted.pop(key, None) is not None:
                continue
            subscription_id, _ = index.decode(entity)
            # A row written after the state was read may belong to a commit under way: leave it.
            if subscription_id in written and index.obsolete(_written_at(entity), written[subscription_id],
                                                             self._margin):
                removed += _delete_unchanged(table, entity)
        for key, (subscription_id, version) in wanted.items():
            table.upsert_entity(index.encode(key, subscription_id, version), mode=UpdateMode.REPLACE)
        return Reindexed(subscriptions=seen, written=len(wanted), removed=removed)


def _written_at(entity: Any) -> datetime | None:
    written_at = entity.metadata.get("timestamp")
    return written_at if isinstance(written_at, datetime) else None


def _delete_unchanged(table: TableClient, entity: Any) -> int:
    try:
        table.delete_entity(entity["PartitionKey"], entity["RowKey"], etag=entity.metadata["etag"],
                            match_condition=MatchConditions.IfNotModified)
    except (ResourceModifiedError, ResourceNotFoundError):
        return 0  # rewritten or removed meanwhile: no longer ours to judge
    return 1

