"""Index rows for failed deliveries: where `dlq list` finds them without reading every partition.

    PartitionKey "failed"   RowKey "{escape(subscription id)}|{escape(operation id)}"
                            SubscriptionId, OperationId, Action, Reason, Attempts, FailedAt

In Azure a delivery that failed for good is completed, not dead-lettered (the binding
auto-completes), so its FAILED delivery record is the only trace; this partition lists
those records across subscriptions. It lives in the ops index table, beside the field
rows of `index` (no field is called "failed", so no partition collides).

The same rules as the field rows: the row is written before the record turns FAILED (a
failed record is never missing from the list) and removed after the write that finalises
the delivery; a reader loads each hit's delivery record and keeps only FAILED ones, so a
row left behind costs a wasted read, never a wrong answer, and `reindex` removes it.
Standard library only, like `codec`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from lifecycle.domain.records import DeliveryRecord, DeliveryStatus
from lifecycle.store.codec import Entity
from lifecycle.store.keys import escape_key
from lifecycle.store.properties import aware, int_property, utc

PARTITION = "failed"
_REASON_CHARS = 1000  # the record keeps the whole reason; the row is for a glance

Key = tuple[str, str]  # (PartitionKey, RowKey)


def key(subscription_id: str, operation_id: str) -> Key:
    return PARTITION, f"{escape_key(subscription_id)}|{escape_key(operation_id)}"


def encode(record: DeliveryRecord) -> Entity:
    partition, row = key(record.subscription_id, record.operation_id)
    return {"PartitionKey": partition, "RowKey": row, "SubscriptionId": record.subscription_id,
            "OperationId": record.operation_id, "Action": record.action, "Reason": record.reason[:_REASON_CHARS],
            "Attempts": int_property(record.attempts), "FailedAt": aware(record.updated_at)}


def decode(entity: Mapping[str, Any]) -> tuple[str, str, datetime]:
    """(subscription id, operation id, when it failed) of a failed-delivery row."""
    return entity["SubscriptionId"], entity["OperationId"], utc(entity["FailedAt"])


def needs_row(record: DeliveryRecord) -> bool:
    return record.status is DeliveryStatus.FAILED


def may_end_a_failure(record: DeliveryRecord) -> bool:
    """Whether writing `record` may finalise a delivery that failed before, so its row should go.

    A failure is written by a processing attempt, which counts itself, so the write that
    ends it counts at least two. First-time outcomes (one attempt, or none from the
    webhook) skip the delete: that keeps a round trip off nearly every commit. A row this
    misses (a rejection of a failed delivery by its redelivered webhook) is skipped by
    readers and removed by `reindex`.
    """
    return record.status is not DeliveryStatus.FAILED and record.attempts > 1


def outdated(failed_at: datetime, record: DeliveryRecord | None) -> bool:
    """Whether a row written at `failed_at` is stale for `record` (the reindex rule).

    Only a record that has moved past the failure (not FAILED, written no earlier) makes
    the row stale; an older non-failed record may be a failure still being written (its
    row goes first), and a missing one may be a record not yet created.
    """
    return record is not None and not needs_row(record) and record.updated_at >= failed_at
