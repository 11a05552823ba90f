"""Table entities <-> domain values, and the keys that lay one subscription out in one partition.

    PartitionKey = escape(subscription id)
    RowKey "history|{inverted seq}"   one HistoryEntry; newest sorts first
    RowKey "op|{escape(operation id)}" one DeliveryRecord
    RowKey "state"                    the Subscription and Version (history entries so far)

Reconciliation keeps its own rows in one reserved partition, LEDGER_PARTITION ("%reconcile":
"%" is always escaped in a subscription's key, so no subscription can map onto it):

    RowKey "run|{inverted start}|{run id}"  one RunRecord; newest sorts first
    RowKey "tombstone|{escape(id)}"         one Tombstone
    RowKey "lease|{name}"                   who holds a lease, and until when

Standard library only, so the in-memory fake can round-trip through it too and mangle
exactly what the real store would. Absent properties mean None: the SDK omits None.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from lifecycle.domain.events import Action, Source
from lifecycle.domain.history import FieldChange, HistoryEntry, Outcome
from lifecycle.domain.model import ChangeTimes, Status, Subscription, Term
from lifecycle.domain.reconcile import Finding, FindingKind, Remedy, RunRecord, RunStatus, Tombstone
from lifecycle.domain.records import Commit, DeliveryRecord, DeliveryStatus

Entity = dict[str, Any]

STATE_ROW = "state"
HISTORY_PREFIX = "history|"
HISTORY_END = "history}"  # "}" follows "|": the exclusive upper bound of every history row
DELIVERY_PREFIX = "op|"
LEDGER_PARTITION = "%reconcile"
RUN_PREFIX, RUN_END = "run|", "run}"
TOMBSTONE_PREFIX, TOMBSTONE_END = "tombstone|", "tombstone}"
LEASE_PREFIX = "lease|"
MAX_TRANSACTION_OPS = 100  # the service's limit for one entity group transaction
_SEQ_LIMIT = 10**10  # 10 digits of history per subscription is far beyond any real lifetime
_INT32 = range(-(2**31), 2**31)

# Table keys forbid / \ # ? and control characters; "%" is escaped too so the mapping reverses.
_FORBIDDEN = frozenset("/\\#?%") | frozenset(map(chr, [*range(0x20), *range(0x7F, 0xA0)]))


_NEEDS_ESCAPE = re.compile("[" + re.escape("".join(sorted(_FORBIDDEN))) + "]")


def escape_key(value: str) -> str:
    """A string safe as a PartitionKey or RowKey; `unescape_key` reverses it."""
    if _NEEDS_ESCAPE.search(value) is None:
        return value  # the common case (GUIDs): one regex scan, on every read and write
    return _NEEDS_ESCAPE.sub(lambda match: f"%{ord(match.group()):02X}", value)


def unescape_key(value: str) -> str:
    if "%" not in value:
        return value
    parts = value.split("%")
    return parts[0] + "".join(chr(int(part[:2], 16)) + part[2:] for part in parts[1:])


SHARD_DIGITS = "0123456789abcdef"  # subscription ids are GUIDs: their first hex digit spreads them evenly


def shard_bounds(shard: int, shards: int) -> tuple[str | None, str | None]:
    """The key range [low, high) of shard `shard` of `shards` (None: open); every key is in exactly one."""
    if not 0 <= shard < shards <= len(SHARD_DIGITS):
        raise ValueError(f"shard {shard} of {shards}: want 0 <= shard < shards <= {len(SHARD_DIGITS)}")
    cuts = [SHARD_DIGITS[n * len(SHARD_DIGITS) // shards] for n in range(1, shards)]
    return (None if shard == 0 else cuts[shard - 1]), (None if shard == shards - 1 else cuts[shard])


def history_row(seq: int) -> str:
    if not 0 < seq < _SEQ_LIMIT:
        raise ValueError(f"history sequence {seq} out of range")
    return f"{HISTORY_PREFIX}{_SEQ_LIMIT - seq:010d}"


def delivery_row(operation_id: str) -> str:
    return DELIVERY_PREFIX + escape_key(operation_id)


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
        "Quantity": _int(subscription.quantity),
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
        "LastOperationAt": _aware(subscription.last_operation_at),
        "StatusChangedAt": _aware(subscription.changed_at.status),
        "PlanChangedAt": _aware(subscription.changed_at.plan),
        "QuantityChangedAt": _aware(subscription.changed_at.quantity),
        "TermChangedAt": _aware(subscription.changed_at.term),
    }


def decode_state(entity: Mapping[str, Any]) -> tuple[Subscription, int]:
    start, end = entity.get("TermStart"), entity.get("TermEnd")
    subscription = Subscription(
        id=unescape_key(entity["PartitionKey"]),
        name=entity.get("Name", ""),
        publisher_id=entity.get("PublisherId", ""),
        offer_id=entity.get("OfferId", ""),
        plan_id=entity.get("PlanId", ""),
        quantity=_plain_int(entity.get("Quantity")),
        status=Status(entity["Status"]),
        term=Term(
            unit=entity.get("TermUnit", ""),
            start=None if start is None else date.fromisoformat(start),
            end=None if end is None else date.fromisoformat(end),
        ),
        auto_renew=entity.get("AutoRenew", False),
        is_free_trial=entity.get("IsFreeTrial", False),
        is_test=entity.get("IsTest", False),
        beneficiary_tenant_id=entity.get("BeneficiaryTenantId", ""),
        purchaser_tenant_id=entity.get("PurchaserTenantId", ""),
        sandbox_type=entity.get("SandboxType", "None"),
        last_operation_id=entity.get("LastOperationId"),
        last_operation_at=_utc_or_none(entity.get("LastOperationAt")),
        changed_at=ChangeTimes(
            status=_utc_or_none(entity.get("StatusChangedAt")),
            plan=_utc_or_none(entity.get("PlanChangedAt")),
            quantity=_utc_or_none(entity.get("QuantityChangedAt")),
            term=_utc_or_none(entity.get("TermChangedAt")),
        ),
    )
    return subscription, _plain_int(entity["Version"]) or 0


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
        "RecordedAt": _aware(entry.recorded_at),
        "ActivityId": entry.activity_id,
        "EventTime": _aware(entry.event_time),
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
        recorded_at=_utc(entity["RecordedAt"]),
        activity_id=entity.get("ActivityId", ""),
        event_time=_utc_or_none(entity.get("EventTime")),
        changes=changes,
        reason=entity.get("Reason", ""),
    )


def encode_delivery(record: DeliveryRecord) -> Entity:
    return {
        "PartitionKey": escape_key(record.subscription_id),
        "RowKey": delivery_row(record.operation_id),
        "Action": record.action,
        "Status": record.status.value,
        "ReceivedAt": _aware(record.received_at),
        "UpdatedAt": _aware(record.updated_at),
        "ActivityId": record.activity_id,
        "Attempts": _int(record.attempts),
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
        received_at=_utc(entity["ReceivedAt"]),
        updated_at=_utc(entity["UpdatedAt"]),
        activity_id=entity.get("ActivityId", ""),
        attempts=_plain_int(entity.get("Attempts")) or 0,
        outcome=entity.get("Outcome", ""),
        reason=entity.get("Reason", ""),
        payload=entity.get("Payload", ""),
    )


def _int(value: int | None) -> int | tuple[str, str] | None:
    # The SDK sends a bare int as Int32 and refuses larger ones; wider values need the type spelt out.
    if value is None or value in _INT32:
        return value
    return (str(value), "Edm.Int64")


def _plain_int(value: Any) -> int | None:
    # Int64 properties come back as the SDK's EntityProperty, a (value, type) named tuple.
    return int(value[0]) if isinstance(value, tuple) else value


def _aware(value: datetime | None) -> datetime | None:
    # The SDK would read a naive datetime as local time; refuse it rather than shift it silently.
    if value is not None and value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()}: the store needs timezone-aware times")
    return value


def _utc(value: datetime) -> datetime:
    # A plain datetime, not the SDK's subclass, so no SDK type travels inward.
    utc = value.astimezone(UTC)
    return datetime.combine(utc.date(), utc.timetz())


def _utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else _utc(value)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROS_LIMIT = 10**17  # microseconds: past the year 5000
_MAX_TEXT = 30_000  # a String property holds 64 KiB of UTF-16: stay well inside it


def run_row(run: RunRecord) -> str:
    _aware(run.started_at)
    micros = (run.started_at - _EPOCH) // timedelta(microseconds=1)
    return f"{RUN_PREFIX}{_MICROS_LIMIT - micros:017d}|{escape_key(run.run_id)}"


def encode_run(run: RunRecord) -> Entity:
    return {
        "PartitionKey": LEDGER_PARTITION,
        "RowKey": run_row(run),
        "RunId": run.run_id,
        "StartedAt": _aware(run.started_at),
        "FinishedAt": _aware(run.finished_at),
        "DryRun": run.dry_run,
        "Status": run.status.value,
        "Pages": run.pages,
        "Listed": run.listed,
        "Known": run.known,
        "Skipped": run.skipped,
        "Counts": json.dumps({kind.value: count for kind, count in run.counts.items()}),
        "Repaired": run.repaired,
        "Errors": run.errors,
        "Error": run.error[:_MAX_TEXT],
        "Problems": _bounded_json(list(run.problems)),
        "Sample": _bounded_json([[f.subscription_id, f.kind.value, f.remedy.value, f.ours, f.theirs, f.detail]
                                 for f in run.sample]),
    }


def decode_run(entity: Mapping[str, Any]) -> RunRecord:
    return RunRecord(
        run_id=entity["RunId"],
        started_at=_utc(entity["StartedAt"]),
        finished_at=_utc_or_none(entity.get("FinishedAt")),
        dry_run=entity.get("DryRun", False),
        status=RunStatus(entity["Status"]),
        pages=entity.get("Pages", 0),
        listed=entity.get("Listed", 0),
        known=entity.get("Known", 0),
        skipped=entity.get("Skipped", 0),
        counts={FindingKind(kind): count for kind, count in json.loads(entity.get("Counts", "{}")).items()},
        repaired=entity.get("Repaired", 0),
        errors=entity.get("Errors", 0),
        error=entity.get("Error", ""),
        problems=tuple(json.loads(entity.get("Problems", "[]"))),
        sample=tuple(Finding(sid, FindingKind(kind), Remedy(remedy), ours, theirs, detail)
                     for sid, kind, remedy, ours, theirs, detail in json.loads(entity.get("Sample", "[]"))),
    )


def _bounded_json(items: list[Any]) -> str:
    # Fewer items rather than a property the service refuses (and a run record never saved).
    text = json.dumps(items, ensure_ascii=False)
    while len(text) > _MAX_TEXT:
        items = items[: len(items) // 2]
        text = json.dumps(items, ensure_ascii=False)
    return text


def tombstone_row(subscription_id: str) -> str:
    return TOMBSTONE_PREFIX + escape_key(subscription_id)


def encode_tombstone(tombstone: Tombstone) -> Entity:
    return {
        "PartitionKey": LEDGER_PARTITION,
        "RowKey": tombstone_row(tombstone.subscription_id),
        "Reason": tombstone.reason[:_MAX_TEXT],
        "CreatedAt": _aware(tombstone.created_at),
    }


def decode_tombstone(entity: Mapping[str, Any]) -> Tombstone:
    return Tombstone(
        subscription_id=unescape_key(entity["RowKey"][len(TOMBSTONE_PREFIX) :]),
        reason=entity.get("Reason", ""),
        created_at=_utc(entity["CreatedAt"]),
    )


def lease_row(name: str) -> str:
    return LEASE_PREFIX + escape_key(name)


def encode_lease(name: str, owner: str, expires_at: datetime) -> Entity:
    return {"PartitionKey": LEDGER_PARTITION, "RowKey": lease_row(name), "Owner": owner,
            "ExpiresAt": _aware(expires_at)}


def decode_lease(entity: Mapping[str, Any]) -> tuple[str, datetime]:
    """(owner, expires at) of a lease row."""
    return entity.get("Owner", ""), _utc(entity["ExpiresAt"])
