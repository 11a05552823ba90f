"""The ops index: rows in a second table, `{prefix}index`, that find subscriptions by field.

    PartitionKey "status|Suspended"          RowKey escape(subscription id)
    PartitionKey "offer|{escape(offer)}"     ...  (also "plan|", "tenant|", "purchaser|";
                                                   tenant ids lower-cased)
    PartitionKey "trial|true", "test|true"   only the true side: the false side is most rows
    PartitionKey "renewal|off"               RowKey "{term end}|{escape(id)}": autoRenew off,
                                             by term end, so "ends within N days" is one range

Each row carries SubscriptionId and the Version it was written for; nothing else. A reader
loads the state row of every hit and judges the current state, never the index row, so
a stale row costs a wasted read and never a wrong answer. Rows are written before the
commit that needs them, so a hit is never missing. Rows a commit makes obsolete are not
deleted by it: the processing path pays one index write per changed field and no delete,
and the first query that meets a stale row removes it (`judge`), guarded by the row's
etag so a commit that has rewritten it since keeps it. A row written after the state it
names may belong to a commit under way and is left alone (`obsolete` says why time and
not the version decides); `reindex` applies the same rule and mends whatever remains.
Standard library only, like `codec`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from lifecycle.domain.model import Subscription
from lifecycle.domain.records import Snapshot
from lifecycle.ports import Indexed, Lookup
from lifecycle.store.codec import Entity
from lifecycle.store.keys import escape_key
from lifecycle.store.properties import plain_int

TABLE_SUFFIX = "index"
RENEWAL_PARTITION = f"{Indexed.RENEWAL.value}|off"
_LOWERED = frozenset({Indexed.TENANT, Indexed.PURCHASER})  # GUIDs: one spelling per tenant

Key = tuple[str, str]  # (PartitionKey, RowKey)
# How much older than its state an obsolete row must be before a reader removes it: far more
# than the clock skew between two storage servers, far less than a row is worth keeping.
MARGIN = timedelta(seconds=5)


def partition(field: Indexed, value: str) -> str:
    return f"{field.value}|{escape_key(value.lower() if field in _LOWERED else value)}"


def keys(subscription: Subscription) -> frozenset[Key]:
    """Every index row `subscription` should have now."""
    row = escape_key(subscription.id)
    values = {
        Indexed.STATUS: subscription.status.value,
        Indexed.OFFER: subscription.offer_id,
        Indexed.PLAN: subscription.plan_id,
        Indexed.TENANT: subscription.beneficiary_tenant_id,
        Indexed.PURCHASER: subscription.purchaser_tenant_id,
        Indexed.FREE_TRIAL: "true" if subscription.is_free_trial else "",
        Indexed.TEST: "true" if subscription.is_test else "",
    }
    found = {(partition(field, value), row) for field, value in values.items() if value}
    end = subscription.term.end
    if not subscription.auto_renew and end is not None:
        found.add((RENEWAL_PARTITION, f"{end.isoformat()}|{row}"))
    return frozenset(found)


def bounds(lookup: Lookup) -> tuple[str, str | None]:
    """The partition to read and the exclusive upper bound of its row keys (None: all)."""
    if lookup.field is Indexed.RENEWAL:
        return RENEWAL_PARTITION, f"{lookup.value}}}"  # "}" sorts after the "|" that ends the date
    return partition(lookup.field, lookup.value), None


def encode(key: Key, subscription_id: str, version: int) -> Entity:
    return {"PartitionKey": key[0], "RowKey": key[1], "SubscriptionId": subscription_id, "Version": version}


def decode(entity: Mapping[str, Any]) -> tuple[str, int]:
    """(subscription id, version written for) of an index row."""
    return entity["SubscriptionId"], plain_int(entity.get("Version")) or 0


class Verdict(enum.Enum):
    CURRENT = "current"  # the state has this row's key: a hit
    KEPT = "kept"  # not a hit, but maybe written for a commit still under way: left alone
    STALE = "stale"  # not a hit, and no commit under way can need it: removed


def judge(key: Key, row_written_at: datetime | None, snapshot: Snapshot | None, margin: timedelta) -> Verdict:
    """What an index row read with `key` is worth against the current state it names."""
    if snapshot is not None and key in keys(snapshot.subscription):
        return Verdict.CURRENT
    if snapshot is not None and obsolete(row_written_at, snapshot.written_at, margin):
        return Verdict.STALE
    return Verdict.KEPT


def obsolete(row_written_at: datetime | None, state_written_at: datetime | None, margin: timedelta) -> bool:
    """Whether an index row the state lacks was last written before that state was (by `margin`).

    A commit under way was decided on the current state, so it writes its rows after that
    state's own write; a row last written earlier belongs to no commit under way, and if
    a commit later needs it, that commit writes it again. Versions cannot tell this: a
    commit bound to fail (a stale snapshot) may overwrite a row with an older version just
    before the commit that needs the row lands. Both times come from the storage service;
    `margin` covers the skew between the servers of two partitions.
    """
    if row_written_at is None or state_written_at is None:
        return False
    return row_written_at < state_written_at - margin
