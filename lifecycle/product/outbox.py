"""TableOutbox: the Product port as one table write per event, drained by the dispatcher.

The marketplace path never waits on the product: `notify` writes the event to the
`{prefix}outbox` table and returns; the dispatcher sends it later. One partition per
subscription (PartitionKey = subscription id), so one entity group transaction writes

    head              the next sequence number of this subscription (guarded by its ETag)
    event|{event id}  the marker that makes the write idempotent: the same change twice is one event
    seq|{sequence}    the event itself, with its delivery bookkeeping for ops
                      (status, attempts, last error, next attempt)

Sequences order the events of one subscription; the dispatcher sends them in that order,
and a later event waits while an earlier one fails. Delivered rows stay as the record of
what the product was told.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.data.tables import TableClient, TableServiceClient, TransactionOperation, UpdateMode

from lifecycle.domain.history import ChangeKind
from lifecycle.domain.model import Subscription
from lifecycle.errors import ConcurrencyConflict, StorageUnavailable
from lifecycle.ports import Clock
from lifecycle.product.events import ProductEvent, build_event
from lifecycle.store.codec import escape_key, unescape_key

HEAD_ROW = "head"
MARKER_PREFIX = "event|"
SEQ_PREFIX, SEQ_END = "seq|", "seq}"  # "}" follows "|": the exclusive upper bound of every event row
PENDING, DELIVERED = "pending", "delivered"
_CONFLICTS = frozenset({"EntityAlreadyExists", "UpdateConditionNotSatisfied", "ConditionNotMet"})
_ATTEMPTS_ON_CONFLICT = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxEntry:
    """One event on its way to the product."""

    subscription_id: str
    sequence: int
    event_id: str
    type: str
    body: str
    created_at: datetime
    status: str = PENDING
    attempts: int = 0
    last_error: str = ""
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    etag: str = ""


class TableOutbox:
    """Product events in Azure Table Storage (or Azurite); see the module docstring for the rows."""

    def __init__(self, service: TableServiceClient, prefix: str, clock: Clock, *,
                 on_written: Callable[[str], None] | None = None) -> None:
        self._service = service
        self._name = f"{prefix}outbox"
        self._clock = clock
        self._on_written = on_written  # e.g. wake the local dispatcher: best effort, after the write
        self._client: TableClient | None = None

    @classmethod
    def from_connection_string(cls, conn: str, prefix: str, clock: Clock, **options: Any) -> TableOutbox:
        return cls(TableServiceClient.from_connection_string(conn), prefix, clock, **options)

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
            with _translated("read outbox head"):
                if self._exists(partition, MARKER_PREFIX + escape_key(event.id)):
                    return False
                try:
                    head = self._table().get_entity(partition, HEAD_ROW)
                except ResourceNotFoundError:
                    head = None
            sequence = int(head["Next"]) if head is not None else 1
            now = self._clock.now()
            new_head = {"PartitionKey": partition, "RowKey": HEAD_ROW, "Next": sequence + 1}
            marker = {"PartitionKey": partition, "RowKey": MARKER_PREFIX + escape_key(event.id), "Sequence": sequence}
            operations: list[Any] = [
                (TransactionOperation.CREATE, marker),
                (TransactionOperation.CREATE, _encode(OutboxEntry(
                    subscription_id=subscription_id, sequence=sequence, event_id=event.id, type=event.type,
                    body=event.body, created_at=now, next_attempt_at=now))),
            ]
            if head is None:
                operations.append((TransactionOperation.CREATE, new_head))
            else:
                operations.append((TransactionOperation.UPDATE, new_head, {
                    "mode": UpdateMode.REPLACE, "etag": head.metadata["etag"],
                    "match_condition": MatchConditions.IfNotModified}))
            try:
                with _translated("write outbox event"):
                    self._table().submit_transaction(operations)
                return True
            except ConcurrencyConflict:
                continue  # another writer took this sequence (or wrote this very event): read again
        raise ConcurrencyConflict(f"outbox of {subscription_id}: {_ATTEMPTS_ON_CONFLICT} conflicting writers")

    # The dispatcher's and ops' side.

    def pending(self) -> Iterator[OutboxEntry]:
        """Every event not yet delivered, across subscriptions (each subscription's in order)."""
        query = "RowKey ge @first and RowKey lt @end and Status eq @pending"
        parameters = {"first": SEQ_PREFIX, "end": SEQ_END, "pending": PENDING}
        with _translated("list pending events"):
            for entity in self._table().query_entities(query, parameters=parameters, results_per_page=1000):
                yield _decode(entity)

    def events(self, subscription_id: str) -> list[OutboxEntry]:
        """Every event of one subscription, delivered or not, in order."""
        query = "PartitionKey eq @pk and RowKey ge @first and RowKey lt @end"
        parameters = {"pk": escape_key(subscription_id), "first": SEQ_PREFIX, "end": SEQ_END}
        with _translated("list events"):
            return [_decode(entity) for entity in self._table().query_entities(query, parameters=parameters)]

    def mark_delivered(self, entry: OutboxEntry) -> None:
        done = replace(entry, status=DELIVERED, attempts=entry.attempts + 1, last_error="",
                       next_attempt_at=None, delivered_at=self._clock.now())
        self._replace(done)

    def mark_failed(self, entry: OutboxEntry, error: str, next_attempt_at: datetime) -> OutboxEntry:
        failed = replace(entry, attempts=entry.attempts + 1, last_error=error[:1000], next_attempt_at=next_attempt_at)
        self._replace(failed)
        return failed

    def _replace(self, entry: OutboxEntry) -> None:
        with _translated("update outbox event"):
            self._table().update_entity(_encode(entry), mode=UpdateMode.REPLACE, etag=entry.etag or None,
                                        match_condition=MatchConditions.IfNotModified if entry.etag
                                        else MatchConditions.Unconditionally)

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


def _row(sequence: int) -> str:
    return f"{SEQ_PREFIX}{sequence:012d}"


def _encode(entry: OutboxEntry) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": escape_key(entry.subscription_id), "RowKey": _row(entry.sequence),
        "Sequence": entry.sequence, "EventId": entry.event_id, "Type": entry.type, "Body": entry.body,
        "Status": entry.status, "Attempts": entry.attempts, "LastError": entry.last_error,
        "CreatedAt": entry.created_at,
    }
    if entry.next_attempt_at is not None:
        entity["NextAttemptAt"] = entry.next_attempt_at
    if entry.delivered_at is not None:
        entity["DeliveredAt"] = entry.delivered_at
    return entity


def _decode(entity: Any) -> OutboxEntry:
    return OutboxEntry(
        subscription_id=unescape_key(entity["PartitionKey"]), sequence=int(entity["Sequence"]),
        event_id=entity["EventId"], type=entity["Type"], body=entity["Body"], status=entity["Status"],
        attempts=int(entity.get("Attempts") or 0), last_error=entity.get("LastError") or "",
        created_at=entity["CreatedAt"], next_attempt_at=entity.get("NextAttemptAt"),
        delivered_at=entity.get("DeliveredAt"), etag=entity.metadata.get("etag") or "",
    )


@contextmanager
def _translated(doing: str) -> Iterator[None]:
    """Map SDK errors onto the worker's error tree; nothing from azure.* leaves this module."""
    try:
        yield
    except HttpResponseError as error:
        code = getattr(error, "error_code", None)
        code = str(getattr(code, "value", code) or "")
        if code in _CONFLICTS or error.status_code in (409, 412):
            raise ConcurrencyConflict(f"{doing}: the row changed or already exists ({code})") from error
        raise StorageUnavailable(f"{doing}: table storage answered {error.status_code} {code}") from error
    except AzureError as error:
        raise StorageUnavailable(f"{doing}: table storage unreachable ({type(error).__name__})") from error
