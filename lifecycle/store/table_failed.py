"""Failed-delivery rows on Azure Table Storage: the "failed" partition of `{prefix}index`.

The row rules (written first, removed after, readers judge the record) are in
`lifecycle.store.failed`. Listing reads that one partition and each hit's delivery
record, a few at a time in parallel; at 100,000 subscriptions it costs what the failures
cost, not what the table holds.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from lifecycle.domain.records import DeliveryRecord
from lifecycle.logs import get_logger
from lifecycle.store import failed
from lifecycle.store.table_index import READERS

ReadDelivery = Callable[[str, str], DeliveryRecord | None]

_BATCH = 50  # hits whose records are read together


class TableFailedDeliveries:
    """Row writes around a delivery write, the listing, and the rebuild."""

    def __init__(self, table: Callable[[], TableClient], read: ReadDelivery) -> None:
        self._table = table
        self._read = read
        self._pool = ThreadPoolExecutor(READERS, thread_name_prefix="failed-read")  # threads start on first use

    def close(self) -> None:
        self._pool.shutdown(wait=False)

    def before_write(self, record: DeliveryRecord | None) -> None:
        """Write the row a FAILED record needs, before the record itself."""
        if record is not None and failed.needs_row(record):
            self._table().upsert_entity(failed.encode(record), mode=UpdateMode.REPLACE)

    def after_write(self, record: DeliveryRecord | None) -> None:
        """Remove the row of a delivery this write may have finalised; a failure leaves a stale row."""
        if record is None or not failed.may_end_a_failure(record):
            return
        partition, row = failed.key(record.subscription_id, record.operation_id)
        try:
            self._table().delete_entity(partition, row)  # the SDK treats a missing row as deleted
        except AzureError as error:
            get_logger("lifecycle.store").warning("index.stale_row_left", partition=partition,
                                                  error_type=type(error).__name__)

    def records(self, limit: int) -> Iterator[DeliveryRecord]:
        """Up to `limit` FAILED records, in key order (subscription, then operation)."""
        rows = self._table().query_entities("PartitionKey eq @pk", parameters={"pk": failed.PARTITION},
                                            results_per_page=min(max(limit, 1), 1000),
                                            select=["SubscriptionId", "OperationId", "FailedAt"])
        left = limit
        while left > 0:
            batch = [failed.decode(row)[:2] for row in itertools.islice(rows, _BATCH)]
            if not batch:
                return
            for record in self._pool.map(lambda ids: self._read(*ids), batch):
                if record is not None and failed.needs_row(record) and left > 0:
                    left -= 1
                    yield record

    def reindex(self, records: Iterable[DeliveryRecord]) -> tuple[int, int]:
        """Write a row for every FAILED record in `records`, remove stale rows: (written, removed)."""
        wanted = {failed.key(r.subscription_id, r.operation_id): r for r in records if failed.needs_row(r)}
        table, removed = self._table(), 0
        for entity in table.query_entities("PartitionKey eq @pk", parameters={"pk": failed.PARTITION}):
            if wanted.pop((entity["PartitionKey"], entity["RowKey"]), None) is not None:
                continue
            subscription_id, operation_id, failed_at = failed.decode(entity)
            if failed.outdated(failed_at, self._read(subscription_id, operation_id)):
                removed += _delete_unchanged(table, entity)
        for record in wanted.values():
            table.upsert_entity(failed.encode(record), mode=UpdateMode.REPLACE)
        return len(wanted), removed


def _delete_unchanged(table: TableClient, entity: Any) -> int:
    try:
        table.delete_entity(entity["PartitionKey"], entity["RowKey"], etag=entity.metadata["etag"],
                            match_condition=MatchConditions.IfNotModified)
    except (ResourceModifiedError, ResourceNotFoundError):
        return 0  # rewritten (failed again) or removed meanwhile
    return 1
