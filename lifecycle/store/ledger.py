"""Reconciliation's rows <-> domain values, in one reserved partition of the subscriptions table.

LEDGER_PARTITION is "%reconcile": "%" is always escaped in a subscription's key, so no
subscription can map onto it.

    RowKey "run|{inverted start}|{run id}"  one RunRecord; newest sorts first
    RowKey "tombstone|{escape(id)}"         one Tombstone
    RowKey "lease|{name}"                   who holds a lease, and until when

Standard library only, like `codec`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from lifecycle.domain.reconcile import Finding, FindingKind, Remedy
from lifecycle.domain.reconcile_runs import RunRecord, RunStatus, Tombstone
from lifecycle.store.codec import Entity
from lifecycle.store.keys import escape_key, unescape_key
from lifecycle.store.properties import MAX_TEXT, aware, utc, utc_or_none

LEDGER_PARTITION = "%reconcile"
RUN_PREFIX, RUN_END = "run|", "run}"
TOMBSTONE_PREFIX, TOMBSTONE_END = "tombstone|", "tombstone}"
LEASE_PREFIX = "lease|"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROS_LIMIT = 10**17  # microseconds: past the year 5000


def run_row(run: RunRecord) -> str:
    aware(run.started_at)
    micros = (run.started_at - _EPOCH) // timedelta(microseconds=1)
    return f"{RUN_PREFIX}{_MICROS_LIMIT - micros:017d}|{escape_key(run.run_id)}"


def encode_run(run: RunRecord) -> Entity:
    return {
        "PartitionKey": LEDGER_PARTITION,
        "RowKey": run_row(run),
        "RunId": run.run_id,
        "StartedAt": aware(run.started_at),
        "FinishedAt": aware(run.finished_at),
        "DryRun": run.dry_run,
        "Status": run.status.value,
        "Pages": run.pages,
        "Listed": run.listed,
        "Known": run.known,
        "Skipped": run.skipped,
        "Counts": json.dumps({kind.value: count for kind, count in run.counts.items()}),
        "Repaired": run.repaired,
        "Errors": run.errors,
        "Error": run.error[:MAX_TEXT],
        "Problems": _bounded_json(list(run.problems)),
        "Sample": _bounded_json([[f.subscription_id, f.kind.value, f.remedy.value, f.ours, f.theirs, f.detail]
                                 for f in run.sample]),
    }


def decode_run(entity: Mapping[str, Any]) -> RunRecord:
    return RunRecord(
        run_id=entity["RunId"],
        started_at=utc(entity["StartedAt"]),
        finished_at=utc_or_none(entity.get("FinishedAt")),
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
    while len(text) > MAX_TEXT:
        items = items[: len(items) // 2]
        text = json.dumps(items, ensure_ascii=False)
    return text


def tombstone_row(subscription_id: str) -> str:
    return TOMBSTONE_PREFIX + escape_key(subscription_id)


def encode_tombstone(tombstone: Tombstone) -> Entity:
    return {
        "PartitionKey": LEDGER_PARTITION,
        "RowKey": tombstone_row(tombstone.subscription_id),
        "Reason": tombstone.reason[:MAX_TEXT],
        "CreatedAt": aware(tombstone.created_at),
    }


def decode_tombstone(entity: Mapping[str, Any]) -> Tombstone:
    return Tombstone(
        subscription_id=unescape_key(entity["RowKey"][len(TOMBSTONE_PREFIX) :]),
        reason=entity.get("Reason", ""),
        created_at=utc(entity["CreatedAt"]),
    )


def lease_row(name: str) -> str:
    return LEASE_PREFIX + escape_key(name)


def encode_lease(name: str, owner: str, expires_at: datetime) -> Entity:
    return {"PartitionKey": LEDGER_PARTITION, "RowKey": lease_row(name), "Owner": owner,
            "ExpiresAt": aware(expires_at)}


def decode_lease(entity: Mapping[str, Any]) -> tuple[str, datetime]:
    """(owner, expires at) of a lease row."""
    return entity.get("Owner", ""), utc(entity["ExpiresAt"])
