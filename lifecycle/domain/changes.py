"""Applying a decided change to a subscription: the event's own aspect, or the marketplace's truth adopted.

`lifecycle.decide` chooses; these build the new value. Each aspect (status, plan,
quantity, term) keeps the time of its last change, which is how `decide` tells a late
event from a new one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, replace
from datetime import datetime

from lifecycle.domain.events import Action, ChangePlan, ChangeQuantity, Event
from lifecycle.domain.model import ChangeTimes, Status, Subscription

ASPECT = {
    Action.CHANGE_PLAN: "plan",
    Action.CHANGE_QUANTITY: "quantity",
    Action.RENEW: "term",
    Action.SUSPEND: "status",
    Action.REINSTATE: "status",
    Action.UNSUBSCRIBE: "status",
    Action.ACTIVATE: "status",
}
"""Which aspect of a subscription each action changes (the field of ChangeTimes)."""


def apply_event(state: Subscription, event: Event, status: Status | None) -> Subscription:
    """The event's change to its aspect, stamped and marked as the last operation applied."""
    changes: dict[str, object] = _marks(state, event)
    aspect = ASPECT[event.action]
    if status is not None:
        changes["status"] = status
    if isinstance(event, ChangePlan) and event.plan_id:
        changes["plan_id"] = event.plan_id
    elif isinstance(event, ChangeQuantity) and event.quantity is not None:
        changes["quantity"] = event.quantity
    if event.timestamp is not None:
        changes["changed_at"] = _STAMP[aspect](state.changed_at, event.timestamp)
    return _evolve(state, changes)


def adopt(state: Subscription | None, truth: Subscription, seen: datetime | None) -> Subscription:
    """The truth's values, every aspect stamped `seen`, with our bookkeeping of what was applied."""
    if state is None:
        return replace(truth, changed_at=ChangeTimes(status=seen, plan=seen, quantity=seen, term=seen))
    times = state.changed_at
    return replace(
        truth,
        last_operation_id=state.last_operation_id,
        last_operation_at=state.last_operation_at,
        changed_at=ChangeTimes(
            status=_later(times.status, seen),
            plan=_later(times.plan, seen),
            quantity=_later(times.quantity, seen),
            term=_later(times.term, seen),
        ),
    )


def _later(known: datetime | None, seen: datetime | None) -> datetime | None:
    if known is None or seen is None:
        return known or seen
    return max(known, seen)


def mark(state: Subscription, event: Event) -> Subscription:
    return _evolve(state, _marks(state, event))


def _marks(state: Subscription, event: Event) -> dict[str, object]:
    newest = state.last_operation_at
    if event.timestamp is not None and (newest is None or event.timestamp >= newest):
        newest = event.timestamp
    return {"last_operation_id": event.operation_id, "last_operation_at": newest}


_STAMP: dict[str, Callable[[ChangeTimes, datetime], ChangeTimes]] = {
    "status": lambda t, at: ChangeTimes(at, t.plan, t.quantity, t.term),
    "plan": lambda t, at: ChangeTimes(t.status, at, t.quantity, t.term),
    "quantity": lambda t, at: ChangeTimes(t.status, t.plan, at, t.term),
    "term": lambda t, at: ChangeTimes(t.status, t.plan, t.quantity, at),
}
"""One aspect's new time; spelled out because `replace` is the slow part of the hot path."""

_FIELDS = tuple(f.name for f in fields(Subscription))


def _evolve(state: Subscription, changes: dict[str, object]) -> Subscription:
    """`dataclasses.replace` without its per-call field introspection: a third cheaper on the hot path."""
    values: dict[str, object] = {name: getattr(state, name) for name in _FIELDS}
    values.update(changes)
    return Subscription(**values)  # type: ignore[arg-type]
