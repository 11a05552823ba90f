"""TableSubscriptionStore: the SubscriptionStore port on Azure Table Storage (or Azurite).

`{prefix}subscriptions`, one partition per subscription (layout in `keys`, rows in
`codec`), so a commit is one entity group transaction guarded by the state row's ETag;
`{prefix}index`, the ops index (`index`, `table_index`) and the failed deliveries' rows
(`failed`, `table_failed`), written around it; the runs, tombstones and leases of
reconciliation (`ledger`, `table_ledger`). SDK errors are translated by
`table_errors.translated` and nowhere else.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, TableServiceClient, TransactionOperation, UpdateMode

from lifecycle.domain.fingerprint import Fingerprinted
from lifecycle.domain.history import HistoryEntry
from lifecycle.domain.model import Subscription
from lifecycle.domain.reconcile_runs import RunRecord, Tombstone
from lifecycle.domain.records import Commit, DeliveryRecord, DeliveryStatus, Snapshot
from lifecycle.ports import Hit, Lookup, Reindexed
from lifecycle.store import codec, index, keys, table_service
from lifecycle.store.table_errors import translated
from lifecycle.store.table_failed import TableFailedDeliveries
from lifecycle.store.table_index import TableIndex
from lifecycle.store.table_ledger import TableLedger

_TABLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{2,62}")


class TableSubscriptionStore:
    """Subscription state, history and delivery records in one Azure table.

    Holds one TableServiceClient (connection pool and credential) for its lifetime; the
    table is created on first use, never at import or construction. Close it when done.
    """

    def __init__(
        self, service: TableServiceClient, prefix: str = "", *, page_size: int = 1000,
        index_margin: timedelta = index.MARGIN,
    ) -> None:
        name = f"{prefix}subscriptions"
        if not _TABLE_NAME.fullmatch(name):
            raise ValueError(f"table name {name!r}: letters and digits only, starting with a letter")
        self._service = service
        self._name = name
        self._index_name = f"{prefix}{index.TABLE_SUFFIX}"
        self._page_size = page_size  # 1000, the service's largest page: fewest round trips
        self._client: TableClient | None = None
        self._index_client: TableClient | None = None
        self._index = TableIndex(self._index_table, self.load, index_margin)
        self._failed = TableFailedDeliveries(self._index_table, self.delivery)
        self._ledger = TableLedger(self._table, page_size)

    @classmethod
    def from_connection_string(
        cls, conn: str, prefix: str = "", *, page_size: int = 1000, index_margin: timedelta = index.MARGIN,
        **client_options: Any,
    ) -> TableSubscriptionStore:
        """`client_options` go to the SDK client (e.g. retry_total, connection_timeout)."""
        service = table_service.from_connection_string(conn, **client_options)
        return cls(service, prefix, page_size=page_size, index_margin=index_margin)

    @classmethod
    def from_endpoint(
        cls, endpoint: str, credential: table_service.Credential, prefix: str = "", *, page_size: int = 1000,
        **client_options: Any,
    ) -> TableSubscriptionStore:
        """For managed identity pass azure-identity's DefaultAzureCredential (or any TokenCredential)."""
        service = table_service.from_endpoint(endpoint, credential, **client_options)
        return cls(service, prefix, page_size=page_size)

    @property
    def table_name(self) -> str:
        return self._name

    @property
    def index_table_name(self) -> str:
        return self._index_name

    def close(self) -> None:
        self._index.close()
        self._failed.close()
        self._service.close()

    def __enter__(self) -> TableSubscriptionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def load(self, subscription_id: str) -> Snapshot | None:
        with translated("load"):
            try:
                entity = self._table().get_entity(keys.escape_key(subscription_id), keys.STATE_ROW)
            except ResourceNotFoundError:
                return None
        subscription, version = codec.decode_state(entity)
        return Snapshot(subscription, etag=entity.metadata["etag"] or "", version=version,
                        written_at=entity.metadata.get("timestamp"))

    def commit(self, commit: Commit) -> Snapshot:
        rows = codec.encode_commit(commit)
        operations: list[Any] = []
        if commit.expected is None:
            operations.append((TransactionOperation.CREATE, rows.state))
        else:
            guard = {"etag": commit.expected.etag, "match_condition": MatchConditions.IfNotModified}
            operations.append((TransactionOperation.UPDATE, rows.state, {"mode": UpdateMode.REPLACE, **guard}))
        operations += [(TransactionOperation.CREATE, row) for row in rows.history]
        if rows.delivery is not None:
            operations.append((TransactionOperation.UPSERT, rows.delivery, {"mode": UpdateMode.REPLACE}))
        with translated("index before commit"):
            self._index.before_commit(commit, rows.version)
            self._failed.before_write(commit.delivery)
        with translated("commit"):
            results = self._table().submit_transaction(operations)
        self._failed.after_write(commit.delivery)
        return Snapshot(commit.subscription, etag=results[0]["etag"], version=rows.version)

    def delivery(self, subscription_id: str, operation_id: str) -> DeliveryRecord | None:
        with translated("read delivery"):
            try:
                entity = self._table().get_entity(keys.escape_key(subscription_id), keys.delivery_row(operation_id))
            except ResourceNotFoundError:
                return None
        return codec.decode_delivery(entity)

    def record_delivery(self, record: DeliveryRecord) -> DeliveryRecord:
        entity = codec.encode_delivery(record)
        with translated("record delivery"):
            self._failed.before_write(record)
            table = self._table()
            try:
                table.create_entity(entity)
                return record
            except ResourceExistsError:
                pass  # a redelivery: the first record stands
            stored = table.get_entity(entity["PartitionKey"], entity["RowKey"])
        return codec.decode_delivery(stored)

    def update_delivery(self, record: DeliveryRecord) -> None:
        with translated("update delivery"):
            self._failed.before_write(record)
            self._table().upsert_entity(codec.encode_delivery(record), mode=UpdateMode.REPLACE)
        self._failed.after_write(record)

    def failed_deliveries(self, limit: int = 100) -> Iterator[DeliveryRecord]:
        with translated("list failed deliveries"):
            yield from self._failed.records(limit)

    def history(self, subscription_id: str) -> list[HistoryEntry]:
        # History row keys are inverted sequence numbers, so key order is newest first.
        query = "PartitionKey eq @pk and RowKey ge @first and RowKey lt @end"
        bounds = {"pk": keys.escape_key(subscription_id), "first": keys.HISTORY_PREFIX, "end": keys.HISTORY_END}
        with translated("read history"):
            entities = self._table().query_entities(query, parameters=bounds, results_per_page=self._page_size)
            return [codec.decode_history(entity) for entity in entities]

    def subscriptions(self) -> Iterator[Subscription]:
        with translated("list subscriptions"):
            pages = self._table().query_entities(
                "RowKey eq @row", parameters={"row": keys.STATE_ROW}, results_per_page=self._page_size
            )
            for entity in pages:  # the SDK fetches the next page only when this one is used up
                yield codec.decode_state(entity)[0]

    def fingerprints(self, shard: int, shards: int) -> Iterator[Fingerprinted]:
        low, high = keys.shard_bounds(shard, shards)
        query = " and ".join(["RowKey eq @row", *(["PartitionKey ge @low"] if low else []),
                              *(["PartitionKey lt @high"] if high else [])])
        parameters = {"row": keys.STATE_ROW, "low": low, "high": high}
        with translated("list subscriptions"):
            # Only the columns a scan reads: the SDK's decoding of each property is most of a row's CPU.
            pages = self._table().query_entities(query, parameters=parameters, select=list(codec.SCAN_COLUMNS),
                                                 results_per_page=self._page_size)
            for entity in pages:
                yield codec.decode_fingerprinted(entity)

    def find(self, lookup: Lookup | None, *, after: str = "", limit: int = 100) -> list[Hit]:
        if lookup is not None:
            with translated("find in the index"):
                return self._index.find(lookup, after=after, limit=limit)
        # No index fits: the state rows themselves, in subscription key order.
        with translated("list subscriptions"):
            pages = self._table().query_entities("RowKey eq @row and PartitionKey gt @after",
                                                 parameters={"row": keys.STATE_ROW, "after": after},
                                                 results_per_page=limit)
            entities = list(itertools.islice(pages, limit))
        return [Hit(entity["PartitionKey"], codec.decode_state(entity)[0]) for entity in entities]

    def reindex(self) -> Reindexed:
        with translated("reindex"):
            states = self._table().query_entities("RowKey eq @row", parameters={"row": keys.STATE_ROW},
                                                  results_per_page=self._page_size)
            fields = self._index.reindex((*codec.decode_state(entity), entity.metadata.get("timestamp"))
                                         for entity in states)
            # The one whole-table read besides the state rows: the service filters, we get the failures.
            failures = self._table().query_entities(
                "RowKey ge @first and RowKey lt @end and Status eq @failed",
                parameters={"first": keys.DELIVERY_PREFIX, "end": keys.DELIVERY_END,
                            "failed": DeliveryStatus.FAILED.value},
                results_per_page=self._page_size)
            written, removed = self._failed.reindex(codec.decode_delivery(entity) for entity in failures)
        return replace(fields, written=fields.written + written, removed=fields.removed + removed)

    def save_run(self, run: RunRecord) -> None:
        self._ledger.save_run(run)

    def runs(self, limit: int = 10) -> list[RunRecord]:
        return self._ledger.runs(limit)

    def tombstone(self, tombstone: Tombstone) -> None:
        self._ledger.tombstone(tombstone)

    def untombstone(self, subscription_id: str) -> None:
        self._ledger.untombstone(subscription_id)

    def tombstones(self) -> Iterator[Tombstone]:
        return self._ledger.tombstones()

    def acquire_lease(self, name: str, owner: str, *, now: datetime, ttl: timedelta) -> bool:
        return self._ledger.acquire_lease(name, owner, now=now, ttl=ttl)

    def release_lease(self, name: str, owner: str) -> None:
        self._ledger.release_lease(name, owner)

    def _index_table(self) -> TableClient:
        if self._index_client is None:
            self._index_client = self._service.create_table_if_not_exists(self._index_name)
        return self._index_client

    def _table(self) -> TableClient:
        # Two threads may both create it on first use; creating an existing table is harmless.
        if self._client is None:
            self._client = self._service.create_table_if_not_exists(self._name)
        return self._client
