"""Reconciliation's ledger on Azure Table Storage: its runs, tombstones and leases.

Rows of one partition of `{prefix}subscriptions` (`ledger` has their layout), read and
written by `TableSubscriptionStore` through this class.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from lifecycle.domain.reconcile_runs import RunRecord, Tombstone
from lifecycle.store import ledger
from lifecycle.store.table_errors import translated


class TableLedger:
    """Runs newest first, tombstones, and leases taken and given back under ETags."""

    def __init__(self, table: Callable[[], TableClient], page_size: int) -> None:
        self._table = table
        self._page_size = page_size

    def save_run(self, run: RunRecord) -> None:
        with translated("save run"):
            self._table().upsert_entity(ledger.encode_run(run), mode=UpdateMode.REPLACE)

    def runs(self, limit: int = 10) -> list[RunRecord]:
        # Run row keys invert the start time, so the first `limit` rows are the newest runs.
        entities = self._rows("list runs", ledger.RUN_PREFIX, ledger.RUN_END, min(max(limit, 1), 1000))
        return [ledger.decode_run(entity) for entity in itertools.islice(entities, max(limit, 0))]

    def tombstone(self, tombstone: Tombstone) -> None:
        with translated("tombstone"):
            self._table().upsert_entity(ledger.encode_tombstone(tombstone), mode=UpdateMode.REPLACE)

    def untombstone(self, subscription_id: str) -> None:
        with translated("untombstone"):  # the SDK treats deleting a missing row as done
            self._table().delete_entity(ledger.LEDGER_PARTITION, ledger.tombstone_row(subscription_id))

    def tombstones(self) -> Iterator[Tombstone]:
        for entity in self._rows("list tombstones", ledger.TOMBSTONE_PREFIX, ledger.TOMBSTONE_END, self._page_size):
            yield ledger.decode_tombstone(entity)

    def acquire_lease(self, name: str, owner: str, *, now: datetime, ttl: timedelta) -> bool:
        entity = ledger.encode_lease(name, owner, now + ttl)
        with translated("acquire lease"):
            table = self._table()
            try:
                table.create_entity(entity)
                return True
            except ResourceExistsError:
                pass
            try:
                current = table.get_entity(ledger.LEDGER_PARTITION, entity["RowKey"])
                holder, expires_at = ledger.decode_lease(current)
                if holder != owner and expires_at > now:
                    return False
                # Guarded by the ETag just read: of two takers of an expired lease, one wins.
                table.update_entity(entity, mode=UpdateMode.REPLACE, etag=current.metadata["etag"],
                                    match_condition=MatchConditions.IfNotModified)
                return True
            except (ResourceNotFoundError, ResourceModifiedError):
                return False  # released or taken between our reads: someone else is at it

    def release_lease(self, name: str, owner: str) -> None:
        with translated("release lease"):
            table = self._table()
            try:
                current = table.get_entity(ledger.LEDGER_PARTITION, ledger.lease_row(name))
                if ledger.decode_lease(current)[0] == owner:
                    table.delete_entity(ledger.LEDGER_PARTITION, ledger.lease_row(name), etag=current.metadata["etag"],
                                        match_condition=MatchConditions.IfNotModified)
            except (ResourceNotFoundError, ResourceModifiedError):
                pass  # expired and taken over, or gone: it is not ours to release

    def _rows(self, doing: str, first: str, end: str, page_size: int) -> Iterator[dict[str, Any]]:
        query = "PartitionKey eq @pk and RowKey ge @first and RowKey lt @end"
        bounds = {"pk": ledger.LEDGER_PARTITION, "first": first, "end": end}
        with translated(doing):
            yield from self._table().query_entities(query, parameters=bounds, results_per_page=page_size)
