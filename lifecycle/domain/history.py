"""History entries and the decision's effects: data the service carries out."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum

from lifecycle.domain.events import Action, Source
from lifecycle.domain.model import Subscription


class Outcome(StrEnum):
    """What processing one delivery came to."""

    APPLIED = "applied"  # the event's change is now our state
    RESYNCED = "resynced"  # we adopted the marketplace's truth (our state lagged)
    SUPERSEDED = "superseded"  # a newer change of the same aspect is already applied
    DUPLICATE = "duplicate"  # this operation was applied before: nothing to do
    NOT_APPLIED = "not_applied"  # the marketplace says the operation failed
    ILLEGAL = "illegal"  # the action is not allowed in the subscription's status
    IGNORED = "ignored"  # unknown action: recorded, nothing changed
    NEEDS_TRUTH = "needs_truth"  # decide again with the marketplace's subscription
    REJECTED = "rejected"  # refused by our webhook policy before it reached the queue


class ChangeKind(StrEnum):
    """The product-facing name of an applied change."""

    ACTIVATED = "activated"
    PLAN_CHANGED = "plan_changed"
    QUANTITY_CHANGED = "quantity_changed"
    SUSPENDED = "suspended"
    REINSTATED = "reinstated"
    RENEWED = "renewed"
    UNSUBSCRIBED = "unsubscribed"
    RESYNCED = "resynced"


@dataclass(frozen=True, slots=True)
class FieldChange:
    field: str
    before: str
    after: str


# Fields whose change is worth a line in the history; bookkeeping fields are not.
TRACKED_FIELDS = (
    "status",
    "offer_id",
    "plan_id",
    "quantity",
    "term",
    "auto_renew",
    "is_free_trial",
    "beneficiary_tenant_id",
    "purchaser_tenant_id",
)


def diff(before: Subscription | None, after: Subscription) -> tuple[FieldChange, ...]:
    """The tracked fields that differ, rendered as text for the history."""
    changes = []
    for name in TRACKED_FIELDS:
        value = getattr(after, name)
        if before is None:
            if _text(value):
                changes.append(FieldChange(name, "", _text(value)))
        elif getattr(before, name) != value:  # compare values first: rendering is the costly part
            changes.append(FieldChange(name, _text(getattr(before, name)), _text(value)))
    return tuple(changes)


def _text(value: object) -> str:
    if value is None:
        return ""
    if hasattr(value, "__dataclass_fields__"):
        return " ".join(f"{f.name}={_text(getattr(value, f.name))}" for f in fields(value))  # type: ignore[arg-type]
    return str(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryEntry:
    """One line of a subscription's append-only history."""

    subscription_id: str
    operation_id: str
    action: Action
    source: Source
    outcome: Outcome
    recorded_at: datetime
    activity_id: str = ""
    event_time: datetime | None = None
    changes: tuple[FieldChange, ...] = ()
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Acknowledge:
    """PATCH the operation Success or Failure through the operations API."""

    operation_id: str
    success: bool


@dataclass(frozen=True, slots=True)
class NotifyProduct:
    """Tell the publisher's product about a change it must act on."""

    change: ChangeKind
    subscription: Subscription


@dataclass(frozen=True, slots=True)
class RecordHistory:
    entry: HistoryEntry


Effect = Acknowledge | NotifyProduct | RecordHistory
