"""Table entities <-> domain values, for the rows `keys` lays out in a subscription's partition.

    state     the Subscription and Version (history entries so far); a reconciliation
              scan reads SCAN_COLUMNS of it only
    history   one HistoryEntry each
    op        one DeliveryRecord each

Reconciliation's rows live in `ledger`, the ops index's in `index`; property conversions
shared by all three in `properties`. Standard library only, so the in-memory fake can
round-trip through it too and mangle exactly what the real store would. Absent properties
mean None: the SDK omits None.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from lifecycle.domain.events import Action, Source
from lifecycle.domain.fingerprint import Fingerprinted, fingerprint_of
from lifecycle.domain.history import FieldChange, HistoryEntry, Outcome
from lifecycle.domain.model import ChangeTimes, Status, Subscription, Term
from lifecycle.domain.reconcile import waiting_since
from lifecycle.domain.records import Commit, DeliveryRecord, DeliveryStatus
from lifecycle.store.keys import (
    DELIVERY_PREFIX,
    MAX_TRANSACTION_OPS,
    STATE_ROW,
    delivery_row,
    escape_key,
    history_row,
    unescape_key,
)
from lifecycle.store.properties import aware, int_property, plain_int, utc, utc_or_none

Entity = dict[str, Any]

@dataclass(frozen=True, slots=True)
class CommitRows:
    """The entities one commit writes, all in the subscription's partition."""

    state: Entity
    history: tuple[Entity, ...]
    delivery: Entity | None
    version: int


def encode_commit(commit: Commit) -> CommitRows:
    """Encode a commit, refusing one that cannot be a single entity group transaction."""
    subscription_id = commit.subscription.id
    others = [entry.subscription_id for entry in commit.history]
    if commit.delivery is not None:
        others.append(commit.delivery.subscription_id)
    if commit.expected is not None:
        others.append(commit.expected.subscription.id)
    if any(other != subscription_id for other in others):
        raise ValueError(f"a commit for {subscription_id!r} carries rows of another subscription")
    operations = 1 + len(commit.history) + (commit.delivery is not None)
    if operations > MAX_TRANSACTION_OPS:
        raise ValueError(f"a commit of {operations} rows exceeds one transaction ({MAX_TRANSACTION_OPS} at most)")
    base = 0 if commit.expected is None else commit.expected.version
    return CommitRows(
        state=encode_state(commit.subscription, base + len(commit.history)),
        history=tuple(encode_history(entry, base + n) for n, entry in enumerate(commit.history, 1)),
        delivery=None if commit.delivery is None else encode_delivery(commit.delivery),
        version=base + len(commit.history),
    )


def encode_state(subscription: Subscription, version: int) -> Entity:
    term = subscription.term
    return {
        "PartitionKey": escape_key(subscription.id),
        "RowKey": STATE_ROW,
        "Version": version,
        "Name": subscription.name,
        "PublisherId": subscription.publisher_id,
        "OfferId": subscription.offer_id,
        "PlanId": subscription.plan_id,
        "Quantity": int_property(subscription.quantity),
        "Status": subscription.status.value,
        "TermUnit": term.unit,
        # ISO dates sort and compare as text, which is all ops queries need of them
        "TermStart": None if term.start is None else term.start.isoformat(),
        "TermEnd": None if term.end is None else term.end.isoformat(),
        "AutoRenew": subscription.auto_renew,
        "IsFreeTrial": subscription.is_free_trial,
        "IsTest": subscription.is_test,
        "BeneficiaryTenantId": subscription.beneficiary_tenant_id,
        "PurchaserTenantId": subscription.purchaser_tenant_id,
        "SandboxType": subscription.sandbox_type,
        "LastOperationId": subscription.last_operation_id,
        "LastOperationAt": aware(subscription.last_operation_at),
        "StatusChangedAt": aware(subscription.changed_at.status),
        "PlanChangedAt": aware(subscription.changed_at.plan),
        "QuantityChangedAt": aware(subscription.changed_at.quantity),
        "TermChangedAt": aware(subscription.changed_at.term),
    }


def decode_state(entity: Mapping[str, Any]) -> tuple[Subscription, int]:
    fields = _compared(entity)
    term = Term(unit=fields.pop("term_unit"), start=fields.pop("term_start"), end=fields.pop("term_end"))
    subscription = Subscription(
        id=unescape_key(entity["PartitionKey"]),
        term=term,
        last_operation_id=entity.get("LastOperationId"),
        last_operation_at=utc_or_none(entity.get("LastOperationAt")),
        changed_at=ChangeTimes(
            status=utc_or_none(entity.get("StatusChangedAt")),
            plan=utc_or_none(entity.get("PlanChangedAt")),
            quantity=utc_or_none(entity.get("QuantityChangedAt")),
            term=utc_or_none(entity.get("TermChangedAt")),
        ),
        **fields,
    )
    return subscription, plain_int(entity["Version"]) or 0


def _compared(entity: Mapping[str, Any]) -> dict[str, Any]:
    """A state row's fields, by the names `fingerprint_of` takes (the term spelt out)."""
    start, end = entity.get("TermStart"), entity.get("TermEnd")
    return {
        "name": entity.get("Name", ""),
        "publisher_id": entity.get("PublisherId", ""),
        "offer_id": entity.get("OfferId", ""),
        "plan_id": entity.get("PlanId", ""),
        "quantity": plain_int(entity.get("Quantity")),
        "status": Status(entity["Status"]),
        "term_unit": entity.get("TermUnit", ""),
        "term_start": None if start is None else date.fromisoformat(start),
        "term_end": None if end is None else date.fromisoformat(end),
        "auto_renew": entity.get("AutoRenew", False),
        "is_free_trial": entity.get("IsFreeTrial", False),
        "is_test": entity.get("IsTest", False),
        "beneficiary_tenant_id": entity.get("BeneficiaryTenantId", ""),
        "purchaser_tenant_id": entity.get("PurchaserTenantId", ""),
        "sandbox_type": entity.get("SandboxType", "None"),
    }


# The state row's columns a reconciliation scan reads (`decode_fingerprinted`): the compared
# fields and what `pending_since` needs; the table store asks the service for these only.
SCAN_COLUMNS = ("PartitionKey", "Status", "PlanId", "Quantity", "TermUnit", "TermStart", "TermEnd", "IsFreeTrial",
                "AutoRenew", "OfferId", "Name", "PublisherId", "BeneficiaryTenantId", "PurchaserTenantId", "IsTest",
                "SandboxType", "StatusChangedAt", "LastOperationAt")


def decode_fingerprinted(entity: Mapping[str, Any]) -> Fingerprinted:
    """A state row (SCAN_COLUMNS suffice) as a scan keeps it, read as `decode_state` reads it
    (the same `_compared`), without building the subscription."""
    fields = _compared(entity)
    since = waiting_since(fields["status"], utc_or_none(entity.get("StatusChangedAt")),
                          utc_or_none(entity.get("LastOperationAt")))
    return Fingerprinted(unescape_key(entity["PartitionKey"]), fingerprint_of(**fields), since)


def encode_history(entry: HistoryEntry, seq: int) -> Entity:
    changes = [{"field": c.field, "before": c.before, "after": c.after} for c in entry.changes]
    return {
        "PartitionKey": escape_key(entry.subscription_id),
        "RowKey": history_row(seq),
        "Seq": seq,
        "OperationId": entry.operation_id,
        "Action": entry.action.value,
        "Source": entry.source.value,
        "Outcome": entry.outcome.value,
        "RecordedAt": aware(entry.recorded_at),
        "ActivityId": entry.activity_id,
        "EventTime": aware(entry.event_time),
        "Changes": json.dumps(changes, ensure_ascii=False),
        "Reason": entry.reason,
    }


def decode_history(entity: Mapping[str, Any]) -> HistoryEntry:
    changes = tuple(FieldChange(c["field"], c["before"], c["after"]) for c in json.loads(entity.get("Changes", "[]")))
    return HistoryEntry(
        subscription_id=unescape_key(entity["PartitionKey"]),
        operation_id=entity.get("OperationId", ""),
        action=Action(entity["Action"]),
        source=Source(entity["Source"]),
        outcome=Outcome(entity["Outcome"]),
        recorded_at=utc(entity["RecordedAt"]),
        activity_id=entity.get("ActivityId", ""),
        event_time=utc_or_none(entity.get("EventTime")),
        changes=changes,
        reason=entity.get("Reason", ""),
    )


def encode_delivery(record: DeliveryRecord) -> Entity:
    return {
        "PartitionKey": escape_key(record.subscription_id),
        "RowKey": delivery_row(record.operation_id),
        "Action": record.action,
        "Status": record.status.value,
        "ReceivedAt": aware(record.received_at),
        "UpdatedAt": aware(record.updated_at),
        "ActivityId": record.activity_id,
        "Attempts": int_property(record.attempts),
        "Outcome": record.outcome,
        "Reason": record.reason,
        "Payload": record.payload,
    }


def decode_delivery(entity: Mapping[str, Any]) -> DeliveryRecord:
    return DeliveryRecord(
        subscription_id=unescape_key(entity["PartitionKey"]),
        operation_id=unescape_key(entity["RowKey"][len(DELIVERY_PREFIX) :]),
        action=entity.get("Action", ""),
        status=DeliveryStatus(entity["Status"]),
        received_at=utc(entity["ReceivedAt"]),
        updated_at=utc(entity["UpdatedAt"]),
        activity_id=entity.get("ActivityId", ""),
        attempts=plain_int(entity.get("Attempts")) or 0,
        outcome=entity.get("Outcome", ""),
        reason=entity.get("Reason", ""),
        payload=entity.get("Payload", ""),
    )
