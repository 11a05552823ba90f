"""The subscription lifecycle: a table of (status, action) -> transition, and `decide`.

Rules, in the order `decide` applies them:

1. An unknown action is recorded and changes nothing (IGNORED).
2. An operation applied before is a DUPLICATE: no effects at all.
3. An operation the marketplace reports Failed or Conflict did not happen (NOT_APPLIED).
4. A *pending* operation (NotStarted/InProgress: ChangePlan, ChangeQuantity, Reinstate)
   awaits our answer, so it is judged on the current state whatever its timestamp:
   legal -> apply it and acknowledge Success; illegal -> first ask for the marketplace's
   truth (our state may lag), and if still illegal acknowledge Failure (ILLEGAL).
5. A *final* operation (Succeeded, or no operation at all for notify-only actions)
   already happened at the marketplace. Older than the last one we applied -> stale;
   unknown subscription, a transition that needs fresh values (Renew: the new term) or
   an illegal pair -> our state lags. In all those cases decide asks for the truth
   (NEEDS_TRUTH); given it, the truth is adopted, never overwritten by the event:
   APPLIED when the truth shows the event's transition, RESYNCED otherwise.
   Otherwise the event's change is applied to our state directly (the common path:
   one API call per event).

The marketplace is the source of truth; a webhook is a hint to go and look. The
README's lifecycle diagram is generated from TABLE by `mermaid()`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import datetime

from lifecycle.domain.events import Action, ChangePlan, ChangeQuantity, Event, Source, UnknownAction
from lifecycle.domain.history import (
    Acknowledge,
    ChangeKind,
    Effect,
    HistoryEntry,
    NotifyProduct,
    Outcome,
    RecordHistory,
    diff,
)
from lifecycle.domain.model import OperationStatus, Status, Subscription


@dataclass(frozen=True, slots=True)
class Transition:
    to: Status
    change: ChangeKind
    needs_truth: bool = False  # the new values come only from get subscription


S = Status
TABLE: dict[tuple[Status, Action], Transition] = {
    (S.PENDING_FULFILLMENT_START, Action.ACTIVATE): Transition(S.SUBSCRIBED, ChangeKind.ACTIVATED),
    (S.PENDING_FULFILLMENT_START, Action.UNSUBSCRIBE): Transition(S.UNSUBSCRIBED, ChangeKind.UNSUBSCRIBED),
    (S.NOT_STARTED, Action.UNSUBSCRIBE): Transition(S.UNSUBSCRIBED, ChangeKind.UNSUBSCRIBED),
    (S.SUBSCRIBED, Action.CHANGE_PLAN): Transition(S.SUBSCRIBED, ChangeKind.PLAN_CHANGED),
    (S.SUBSCRIBED, Action.CHANGE_QUANTITY): Transition(S.SUBSCRIBED, ChangeKind.QUANTITY_CHANGED),
    (S.SUBSCRIBED, Action.RENEW): Transition(S.SUBSCRIBED, ChangeKind.RENEWED, needs_truth=True),
    (S.SUBSCRIBED, Action.SUSPEND): Transition(S.SUSPENDED, ChangeKind.SUSPENDED),
    (S.SUBSCRIBED, Action.UNSUBSCRIBE): Transition(S.UNSUBSCRIBED, ChangeKind.UNSUBSCRIBED),
    (S.SUSPENDED, Action.REINSTATE): Transition(S.SUBSCRIBED, ChangeKind.REINSTATED),
    (S.SUSPENDED, Action.UNSUBSCRIBE): Transition(S.UNSUBSCRIBED, ChangeKind.UNSUBSCRIBED),
}
"""Every legal (status, action) pair. Anything absent is illegal in that status."""

ACKNOWLEDGED = frozenset({Action.CHANGE_PLAN, Action.CHANGE_QUANTITY, Action.REINSTATE})
"""Actions whose pending operation we answer with PATCH Success/Failure."""

PENDING = frozenset({OperationStatus.NOT_STARTED, OperationStatus.IN_PROGRESS})


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """One event with what the processing service learnt about it before deciding."""

    event: Event
    operation: OperationStatus  # as the operations API reports it now (NOT_FOUND: none)
    applied_before: bool = False  # our delivery record says this operation was applied
    source: Source = Source.WEBHOOK
    truth: Subscription | None = None  # get subscription, when decide asked for it


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    state: Subscription | None  # the state after the decision
    effects: tuple[Effect, ...] = ()
    reason: str = ""


def decide(state: Subscription | None, delivery: Delivery, now: datetime) -> Decision:
    """The pure lifecycle decision for one delivery; see the module docstring for the rules."""
    event = delivery.event
    if isinstance(event, UnknownAction):
        return _explained(Outcome.IGNORED, state, delivery, now, f"unknown action {event.name!r}")
    if delivery.applied_before or (state is not None and state.last_operation_id == event.operation_id):
        return Decision(Outcome.DUPLICATE, state, reason="operation already applied")
    if delivery.operation in (OperationStatus.FAILED, OperationStatus.CONFLICT):
        reason = f"the marketplace reports the operation {delivery.operation.value}"
        return _explained(Outcome.NOT_APPLIED, state, delivery, now, reason)
    if delivery.operation in PENDING and event.action in ACKNOWLEDGED:
        return _decide_pending(state, delivery, now)
    return _decide_final(state, delivery, now)


def _decide_pending(state: Subscription | None, delivery: Delivery, now: datetime) -> Decision:
    event = delivery.event
    base = _adopt(state, delivery.truth) if delivery.truth is not None else state
    if base is None:
        return Decision(Outcome.NEEDS_TRUTH, state, reason="subscription unknown here")
    transition = TABLE.get((base.status, event.action))
    if transition is None:
        if delivery.truth is None:
            return Decision(Outcome.NEEDS_TRUTH, state, reason="illegal here; our state may lag")
        reason = f"{event.action.value} is not allowed while {base.status.value}"
        decision = _explained(Outcome.ILLEGAL, base, delivery, now, reason, before=state)
        return replace(decision, effects=(Acknowledge(event.operation_id, False), *decision.effects))
    leading: tuple[Effect, ...] = (Acknowledge(event.operation_id, True),)
    if base is not state:
        # Two entries when the truth had moved: what we had missed, then the change itself.
        missed = _changed(Outcome.RESYNCED, state, base, delivery, now, ChangeKind.RESYNCED)
        leading += missed.effects
    new = _apply(base, event, transition)
    return _changed(Outcome.APPLIED, base, new, delivery, now, transition.change, leading)


def _decide_final(state: Subscription | None, delivery: Delivery, now: datetime) -> Decision:
    event = delivery.event
    truth = delivery.truth
    if truth is None:
        transition = None if state is None else TABLE.get((state.status, event.action))
        if state is None or transition is None or transition.needs_truth or _is_stale(state, event):
            return Decision(Outcome.NEEDS_TRUTH, state, reason=_why_truth(state, event, transition))
        new = _apply(state, event, transition)
        return _changed(Outcome.APPLIED, state, new, delivery, now, transition.change)
    new = _adopt(state, truth)
    if not _is_stale(state, event):
        new = _mark(new, event)
    expected = None if state is None else TABLE.get((state.status, event.action))
    if expected is not None and new.status is expected.to and _shows(new, event):
        return _changed(Outcome.APPLIED, state, new, delivery, now, expected.change)
    return _changed(Outcome.RESYNCED, state, new, delivery, now, ChangeKind.RESYNCED)


def _why_truth(state: Subscription | None, event: Event, transition: Transition | None) -> str:
    if state is None:
        return "subscription unknown here"
    if transition is None:
        return f"{event.action.value} is not allowed while {state.status.value}; our state may lag"
    if transition.needs_truth:
        return f"{event.action.value} takes its new values from the marketplace"
    return "older than the last operation applied"


def _is_stale(state: Subscription | None, event: Event) -> bool:
    if state is None or state.last_operation_at is None or event.timestamp is None:
        return False
    return event.timestamp < state.last_operation_at


def _shows(truth: Subscription, event: Event) -> bool:
    """Whether the truth carries the event's own target value."""
    if isinstance(event, ChangePlan):
        return truth.plan_id == event.plan_id
    if isinstance(event, ChangeQuantity):
        return truth.quantity == event.quantity
    return True


def _apply(state: Subscription, event: Event, transition: Transition) -> Subscription:
    """The event's change, marked as the last operation applied (one `replace`: it is the hot path)."""
    changes: dict[str, object] = {"status": transition.to, **_marks(state, event)}
    if isinstance(event, ChangePlan):
        changes["plan_id"] = event.plan_id
    elif isinstance(event, ChangeQuantity):
        changes["quantity"] = event.quantity
    return _evolve(state, changes)


def _adopt(state: Subscription | None, truth: Subscription) -> Subscription:
    """The truth's values with our bookkeeping of what was applied."""
    if state is None:
        return truth
    return replace(truth, last_operation_id=state.last_operation_id, last_operation_at=state.last_operation_at)


def _mark(state: Subscription, event: Event) -> Subscription:
    return _evolve(state, _marks(state, event))


_FIELDS = tuple(f.name for f in fields(Subscription))


def _evolve(state: Subscription, changes: dict[str, object]) -> Subscription:
    """`dataclasses.replace` without its per-call field introspection: a third cheaper on the hot path."""
    values: dict[str, object] = {name: getattr(state, name) for name in _FIELDS}
    values.update(changes)
    return Subscription(**values)  # type: ignore[arg-type]


def _marks(state: Subscription, event: Event) -> dict[str, object]:
    newest = state.last_operation_at
    if event.timestamp is not None and (newest is None or event.timestamp >= newest):
        newest = event.timestamp
    return {"last_operation_id": event.operation_id, "last_operation_at": newest}


def _changed(
    outcome: Outcome,
    before: Subscription | None,
    after: Subscription,
    delivery: Delivery,
    now: datetime,
    change: ChangeKind,
    leading: tuple[Effect, ...] = (),
) -> Decision:
    changes = diff(before, after)
    if not changes:
        return Decision(outcome, after, leading, reason="already reflected in our state")
    entry = _entry(outcome, delivery, now, changes=changes)
    notify = NotifyProduct(ChangeKind.RESYNCED if outcome is Outcome.RESYNCED else change, after)
    return Decision(outcome, after, (*leading, RecordHistory(entry), notify))


def _explained(
    outcome: Outcome,
    state: Subscription | None,
    delivery: Delivery,
    now: datetime,
    reason: str,
    before: Subscription | None = None,
) -> Decision:
    """A decision that changes no field of the event's own, recorded with its reason."""
    changes = () if state is None or before is None else diff(before, state)
    entry = _entry(outcome, delivery, now, changes=changes, reason=reason)
    return Decision(outcome, state, (RecordHistory(entry),), reason)


def _entry(outcome: Outcome, delivery: Delivery, now: datetime, **extra: object) -> HistoryEntry:
    event = delivery.event
    return HistoryEntry(
        subscription_id=event.subscription_id,
        operation_id=event.operation_id,
        activity_id=event.activity_id,
        action=event.action,
        source=delivery.source,
        outcome=outcome,
        recorded_at=now,
        event_time=event.timestamp,
        **extra,  # type: ignore[arg-type]
    )


def mermaid() -> str:
    """The lifecycle as a Mermaid state diagram, generated from TABLE."""
    lines = ["stateDiagram-v2", "    [*] --> PendingFulfillmentStart: purchase"]
    for (status, action), transition in TABLE.items():
        ack = " (ack)" if action in ACKNOWLEDGED else ""
        lines.append(f"    {status.value} --> {transition.to.value}: {action.value}{ack}")
    lines.append("    Unsubscribed --> [*]")
    return "\n".join(lines) + "\n"
