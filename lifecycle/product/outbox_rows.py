"""The outbox's event rows: entity <-> OutboxEntry, and SDK errors mapped onto the error tree."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from azure.core.exceptions import AzureError, HttpResponseError

from lifecycle.errors import ConcurrencyConflict, StorageUnavailable
from lifecycle.product.backlog import OutboxEntry
from lifecycle.store.codec import escape_key, unescape_key

SEQ_PREFIX, SEQ_END = "seq|", "seq}"  # "}" follows "|": the exclusive upper bound of every event row
_CONFLICTS = frozenset({"EntityAlreadyExists", "UpdateConditionNotSatisfied", "ConditionNotMet"})


def row_key(sequence: int) -> str:
    return f"{SEQ_PREFIX}{sequence:012d}"


def encode(entry: OutboxEntry) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": escape_key(entry.subscription_id), "RowKey": row_key(entry.sequence),
        "Sequence": entry.sequence, "EventId": entry.event_id, "Type": entry.type, "Body": entry.body,
        "Status": entry.status, "Attempts": entry.attempts, "LastError": entry.last_error,
        "CreatedAt": entry.created_at,
    }
    if entry.next_attempt_at is not None:
        entity["NextAttemptAt"] = entry.next_attempt_at
    if entry.delivered_at is not None:
        entity["DeliveredAt"] = entry.delivered_at
    return entity


def decode(entity: Any) -> OutboxEntry:
    return OutboxEntry(
        subscription_id=unescape_key(entity["PartitionKey"]), sequence=int(entity["Sequence"]),
        event_id=entity["EventId"], type=entity["Type"], body=entity["Body"], status=entity["Status"],
        attempts=int(entity.get("Attempts") or 0), last_error=entity.get("LastError") or "",
        created_at=entity["CreatedAt"], next_attempt_at=entity.get("NextAttemptAt"),
        delivered_at=entity.get("DeliveredAt"), etag=entity.metadata.get("etag") or "",
    )


@contextmanager
def translated(doing: str) -> Iterator[None]:
    """Map SDK errors onto the worker's error tree; nothing from azure.* leaves the outbox."""
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
