"""TableOutbox: the Product port as one table write per event, drained by the dispatcher.

The marketplace path never waits on the product: `notify` writes the event to the
`{prefix}outbox` table and returns; the dispatcher sends it later. One partition per
subscription (PartitionKey = subscription id), so one entity group transaction writes

    head              the next sequence number of this subscription (guarded by its ETag)
    event|{event id}  makes the write idempotent: the same change twice is one event
    seq|{sequence}    the event itself, with its delivery bookkeeping for ops
                      (status, attempts, last error, next attempt)

and one partition, `pending`, lists the subscriptions that may have pending events
(RowKey = subscription id), so a dispatch pass reads that partition and then only the
listed subscriptions' pending rows, never the delivered ones. The order makes an event
without a listing impossible:

    writer      read head -> upsert the listing (a new ETag) -> commit the event, guarded by head's ETag
    dispatcher  read the listing -> read the backlog (head's ETag) -> all delivered ->
                touch head, guarded by that ETag (the fence) -> delete the listing, guarded by its ETag

A crash after the listing leaves a listing with nothing pending, which the dispatcher
releases. A writer whose commit lands after the fence fails on head's ETag, reads again
and lists again; one that listed after the dispatcher read the listing makes the delete
fail. Delivered rows stay as the record of what the product was told; they cost a pass
nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, TableServiceClient, TransactionOperation, UpdateMode

from lifecycle.domain.history import ChangeKind
from lifecycle.domain.model import Subscription
from lifecycle.errors import ConcurrencyConflict
from lifecycle.ports import Clock
from lifecycle.product.backlog import DELIVERED, PENDING, Backlog, Listing, OutboxEntry
from lifecycle.product.events import ProductEvent, build_event
from lifecycle.product.outbox_rows import SEQ_END, SEQ_PREFIX, decode, encode
from lifecycle.store import table_service
from lifecycle.store.keys import escape_key, unescape_key
from lifecycle.store.table_errors import translated as translated_store

HEAD_ROW = "head"
EVENT_ID_PREFIX = "event|"
LISTING_PARTITION = "pending"  # subscription ids are GUIDs: never this
META_PARTITION, LISTED_ROW = "outbox", "listed-v1"  # written once every pre-listing pending event is listed
_ATTEMPTS_ON_CONFLICT = 5


def translated(doing: str) -> AbstractContextManager[None]:
    """SDK errors onto the error tree; a missing row is not a conflict here (`table_errors`)."""
    return translated_store(doing, missing_is_conflict=False)


class TableOutbox:
    """Product events in Azure Table Storage (or Azurite); see the module docstring for the rows."""

    def __init__(self, service: TableServiceClient, prefix: str, clock: Clock, *,
                 on_written: Callable[[str], None] | None = None) -> None:
        self._service = service
        self._name = f"{prefix}outbox"
        self._clock = clock
        self._on_written = on_written  # wake a dispatcher: best effort, after the write
        self._client: TableClient | None = None
        self._listed_before = False

    @classmethod
    def from_connection_string(cls, conn: str, prefix: str, clock: Clock, **options: Any) -> TableOutbox:
        return cls(table_service.from_connection_string(conn), prefix, clock, **options)

    def close(self) -> None:
        self._service.close()

    # The Product port.

    def notify(self, change: ChangeKind, subscription: Subscription, *, operation_id: str) -> None:
        event = build_event(change, subscription, operation_id=operation_id, at=self._clock.now())
        self.append(subscription.id, event)
        if self._on_written is not None:
            self._on_written(subscription.id)

    def append(self, subscription_id: str, event: ProductEvent) -> bool:
        """Write `event` after this subscription's last one; False if it was written before."""
        partition = escape_key(subscription_id)
        for _ in range(_ATTEMPTS_ON_CONFLICT):
            with translated("read outbox head"):
                if self._exists(partition, EVENT_ID_PREFIX + escape_key(event.id)):
                    return False
                head = self._get(partition, HEAD_ROW)
            self._list(partition)  # before the event, on every attempt: see the module docstring
            sequence = int(head["Next"]) if head is not None else 1
            now = self._clock.now()
            new_head = {"PartitionKey": partition, "RowKey": HEAD_ROW, "Next": sequence + 1}
            marker = {"PartitionKey": partition, "RowKey": EVENT_ID_PREFIX + escape_key(event.id),
                      "Sequence": sequence}
            operations: list[Any] = [
                (TransactionOperation.CREATE, marker),
                (TransactionOperation.CREATE, encode(OutboxEntry(
                    subscription_id=subscription_id, sequence=sequence, event_id=event.id, type=event.type,
                    body=event.body, created_at=now, next_attempt_at=now))),
                _guarded(new_head, head),
            ]
            try:
                with translated("write outbox event"):
                    self._table().submit_transaction(operations)
                return True
            except ConcurrencyConflict:
                continue  # another writer (or the dispatcher's fence) changed head: read and list again
        raise ConcurrencyConflict(f"outbox of {subscription_id}: {_ATTEMPTS_ON_CONFLICT} conflicting writers")

    # The dispatcher's side (lifecycle.product.backlog.Outbox) and ops'.

    def listings(self) -> Iterator[Listing]:
        self._list_events_from_before_listings()
        with translated("list pending subscriptions"):
            for entity in self._table().query_entities("PartitionKey eq @pk", parameters={"pk": LISTING_PARTITION},
                                                        select=["PartitionKey", "RowKey"], results_per_page=1000):
                yield Listing(unescape_key(entity["RowKey"]), entity.metadata.get("etag") or "")

    def backlog(self, subscription_id: str) -> Backlog:
        # The SDK substitutes "@name" only between spaces, hence the spaced parentheses.
        query = ("PartitionKey eq @pk and ( RowKey eq @head or "
                 "( RowKey ge @first and RowKey lt @end and Status eq @pending ) )")
        parameters = {"pk": escape_key(subscription_id), "head": HEAD_ROW, "first": SEQ_PREFIX, "end": SEQ_END,
                      "pending": PENDING}
        version, entries = "", []
        with translated("read pending events"):
            for entity in self._table().query_entities(query, parameters=parameters):
                if entity["RowKey"] == HEAD_ROW:
                    version = entity.metadata.get("etag") or ""
                else:
                    entries.append(decode(entity))
        return Backlog(subscription_id, tuple(sorted(entries, key=lambda e: e.sequence)), version)

    def release(self, listing: Listing, backlog: Backlog) -> bool:
        partition = escape_key(listing.subscription_id)
        fence: dict[str, Any] = {"PartitionKey": partition, "RowKey": HEAD_ROW, "Fence": uuid.uuid4().hex}
        try:
            with translated("fence outbox head"):
                if backlog.version:
                    self._table().update_entity(fence, mode=UpdateMode.MERGE, etag=backlog.version,
                                                match_condition=MatchConditions.IfNotModified)
                else:  # listed, but its first event was never committed: the writer's CREATE of head now fails
                    self._table().create_entity({**fence, "Next": 1})
            with translated("unlist subscription"):
                self._table().delete_entity(LISTING_PARTITION, partition, etag=listing.etag,
                                            match_condition=MatchConditions.IfNotModified)
        except ConcurrencyConflict:
            return False  # written or listed again meanwhile: stays listed for the next pass
        return True

    def pending(self) -> Iterator[OutboxEntry]:
        """Every event not yet delivered, per listed subscription, each subscription's in order."""
        for listing in self.listings():
            yield from self.backlog(listing.subscription_id).entries

    def events(self, subscription_id: str) -> list[OutboxEntry]:
        """Every event of one subscription, delivered or not, in order."""
        query = "PartitionKey eq @pk and RowKey ge @first and RowKey lt @end"
        parameters = {"pk": escape_key(subscription_id), "first": SEQ_PREFIX, "end": SEQ_END}
        with translated("list events"):
            return [decode(entity) for entity in self._table().query_entities(query, parameters=parameters)]

    def mark_delivered(self, entry: OutboxEntry) -> None:
        done = replace(entry, status=DELIVERED, attempts=entry.attempts + 1, last_error="",
                       next_attempt_at=None, delivered_at=self._clock.now())
        self._replace(done)

    def mark_failed(self, entry: OutboxEntry, error: str, next_attempt_at: datetime) -> OutboxEntry:
        failed = replace(entry, attempts=entry.attempts + 1, last_error=error[:1000], next_attempt_at=next_attempt_at)
        return replace(failed, etag=self._replace(failed))

    def _list(self, partition: str) -> None:
        # A fresh value on every upsert: the listing's ETag must change even if the clock did not.
        listing = {"PartitionKey": LISTING_PARTITION, "RowKey": partition, "Written": uuid.uuid4().hex}
        with translated("list subscription"):
            self._table().upsert_entity(listing, mode=UpdateMode.REPLACE)

    def _list_events_from_before_listings(self) -> None:
        """Once per table: list the pending events written by a version without listings (a scan)."""
        if self._listed_before:
            return
        with translated("check outbox listings"):
            if self._get(META_PARTITION, LISTED_ROW) is None:
                query = "RowKey ge @first and RowKey lt @end and Status eq @pending"
                parameters = {"first": SEQ_PREFIX, "end": SEQ_END, "pending": PENDING}
                rows = self._table().query_entities(query, parameters=parameters, select=["PartitionKey"])
                for partition in {row["PartitionKey"] for row in rows}:
                    self._list(partition)
                self._table().upsert_entity({"PartitionKey": META_PARTITION, "RowKey": LISTED_ROW})
        self._listed_before = True

    def _replace(self, entry: OutboxEntry) -> str:
        """Write `entry` over the row as read (its etag); the row's new etag."""
        with translated("update outbox event"):
            written = self._table().update_entity(encode(entry), mode=UpdateMode.REPLACE, etag=entry.etag or None,
                                                  match_condition=MatchConditions.IfNotModified if entry.etag
                                                  else MatchConditions.Unconditionally)
        return str(written["etag"])

    def _get(self, partition: str, row: str) -> Any:
        try:
            return self._table().get_entity(partition, row)
        except ResourceNotFoundError:
            return None

    def _exists(self, partition: str, row: str) -> bool:
        try:
            self._table().get_entity(partition, row, select=["RowKey"])
        except ResourceNotFoundError:
            return False
        return True

    def _table(self) -> TableClient:
        if self._client is None:
            self._client = self._service.create_table_if_not_exists(self._name)
        return self._client


def _guarded(new_head: dict[str, Any], head: Any) -> Any:
    """Head's write in the event's transaction: create it, or replace it only if unchanged since read."""
    if head is None:
        return (TransactionOperation.CREATE, new_head)
    return (TransactionOperation.UPDATE, new_head, {"mode": UpdateMode.REPLACE, "etag": head.metadata["etag"],
                                                    "match_condition": MatchConditions.IfNotModified})
