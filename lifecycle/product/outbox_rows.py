"""The outbox's event rows: entity <-> OutboxEntry."""

from __future__ import annotations

from typing import Any

from lifecycle.product.backlog import OutboxEntry
from lifecycle.store.keys import escape_key, unescape_key

SEQ_PREFIX, SEQ_END = "seq|", "seq}"  # "}" follows "|": the exclusive upper bound of every event row


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
