"""The subscription lifecycle: a table of (status, action) -> transition, and `decide`.

Rules, in the order `decide` applies them:

1. An unknown action is recorded and changes nothing (IGNORED).
2. An operation applied before is a DUPLICATE: no effects at all.
3. An operation the marketplace reports Failed or Conflict did not happen (NOT_APPLIED).
4. A *pending* operation (NotStarted/InProgress: ChangePlan, ChangeQuantity, Reinstate)
   awaits our answer, so it is judged by TABLE on the current status whatever its
   timestamp: legal -> apply it and acknowledge Success; illegal -> first ask for the
   marketplace's truth (our state may lag): if it already shows the change (accepted
   meanwhile) acknowledge Success, if still illegal acknowledge Failure.
5. A *final* operation (Succeeded, or none at all for notify-only actions) already
   happened: the marketplace checked it, so TABLE does not judge it again. Deliveries
   arrive out of order, so each aspect (status, plan, quantity, term) keeps the time of
   its last change: an event older than that is SUPERSEDED; otherwise its change is
   applied to that aspect alone. Unsubscribed is final: no later status applies.
6. A status event no operation stands behind (the operations API answers 404, which the
   docs allow for notify-only actions) is applied only if the subscription, read after
   it, shows that status; otherwise it is NOT_APPLIED with that reason.
7. The truth (get subscription) is asked for only where the event cannot say enough:
   an unknown subscription (adopted whole, RESYNCED), Renew (the new term), and the
   illegal pending case above. The truth was read after the event happened, so adopting
   it stamps every aspect with the event's own time (the marketplace's clock: ours may
   be skewed), and only what is older than that event is superseded by it. Our own
   activation is confirmed by the truth and takes it whole: the term starts at
   activation, so only that read carries its dates.

The marketplace is the source of truth; a webhook is a hint to go and look. The
README's lifecycle diagram is generated from TABLE by `mermaid()`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from lifecycle.domain.changes import ASPECT, adopt, apply_event, mark
from lifecycle.domain.events import Action, Event, Source, UnknownAction
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


S = Status
TABLE: dict[tuple[Status, Action], Transition] = {
    (S.PENDING_FULFILLMENT_START, Action.ACTIVATE): Transition(S.SUBSCRIBED, ChangeKind.ACTIVATED),
    (S.PENDING_FULFILLMENT_START, Action.UNSUBSCRIBE): Transition(S.UNSUBSCRIBED, ChangeKind.UNSUBSCRIBED),
    (S.NOT_STARTED, Action.UNSUBSCRIBE): Transition(S.UNSUBSCRIBED, ChangeKind.UNSUBSCRIBED),
    (S.SUBSCRIBED, Action.CHANGE_PLAN): Transition(S.SUBSCRIBED, ChangeKind.PLAN_CHANGED),
    (S.SUBSCRIBED, Action.CHANGE_QUANTITY): Transition(S.SUBSCRIBED, ChangeKind.QUANTITY_CHANGED),
    (S.SUBSCRIBED, Action.RENEW): Transition(S.SUBSCRIBED, ChangeKind.RENEWED),
    (S.SUBSCRIBED, Action.SUSPEND): Transition(S.SUSPENDED, ChangeKind.SUSPENDED),
    (S.SUBSCRIBED, Action.UNSUBSCRIBE): Transition(S.UNSUBSCRIBED, ChangeKind.UNSUBSCRIBED),
    (S.SUSPENDED, Action.REINSTATE): Transition(S.SUBSCRIBED, ChangeKind.REINSTATED),
    (S.SUSPENDED, Action.UNSUBSCRIBE): Transition(S.UNSUBSCRIBED, ChangeKind.UNSUBSCRIBED),
}
"""Every legal (status, action) pair. Anything absent is illegal in that status."""

ACKNOWLEDGED = frozenset({Action.CHANGE_PLAN, Action.CHANGE_QUANTITY, Action.REINSTATE})
"""Actions whose pending operation we answer with PATCH Success/Failure."""

PENDING = frozenset({OperationStatus.NOT_STARTED, OperationStatus.IN_PROGRESS})

OUTCOME_OF = {action: transition for (_, action), transition in TABLE.items()}
"""Each action's target status and change kind (the same from every status it is legal in)."""


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
    if state is None and delivery.truth is None:
        return Decision(Outcome.NEEDS_TRUTH, state, reason="subscription unknown here")
    if delivery.operation in PENDING and event.action in ACKNOWLEDGED:
        return _decide_pending(state, delivery, now)
    return _decide_final(state, delivery, now)


def _decide_pending(state: Subscription | None, delivery: Delivery, now: datetime) -> Decision:
    event = delivery.event
    base = state if delivery.truth is None else adopt(state, delivery.truth, event.timestamp)
    assert base is not None  # decide asked for the truth when there is no state
    transition = TABLE.get((base.status, event.action))
    if transition is None:
        if delivery.truth is None:
            return Decision(Outcome.NEEDS_TRUTH, state, reason="illegal here; our state may lag")
        target = OUTCOME_OF[event.action]
        if base.status is target.to:
            # The truth already shows this change (the marketplace accepted it between our read
            # of the operation and of the subscription): confirm it, never refuse what happened.
            leading: tuple[Effect, ...] = (Acknowledge(event.operation_id, True),)
            confirmed = apply_event(base, event, None)
            return _changed(Outcome.APPLIED, state, confirmed, delivery, now, target.change, leading)
        reason = f"{event.action.value} is not allowed while {base.status.value}"
        explained = _explained(Outcome.ILLEGAL, base, delivery, now, reason, before=state)
        return replace(explained, effects=(Acknowledge(event.operation_id, False), *explained.effects))
    leading = (Acknowledge(event.operation_id, True),)
    if base is not state:
        # Two entries when the truth had moved: what we had missed, then the change itself.
        leading += _changed(Outcome.RESYNCED, state, base, delivery, now, ChangeKind.RESYNCED).effects
    new = apply_event(base, event, transition.to)
    return _changed(Outcome.APPLIED, base, new, delivery, now, transition.change, leading)


def _decide_final(state: Subscription | None, delivery: Delivery, now: datetime) -> Decision:
    event = delivery.event
    if state is None:
        assert delivery.truth is not None  # decide asked for it
        first = mark(adopt(None, delivery.truth, event.timestamp), event)
        return _changed(Outcome.RESYNCED, None, first, delivery, now, ChangeKind.RESYNCED)
    aspect = ASPECT[event.action]
    last = getattr(state.changed_at, aspect)
    if event.timestamp is not None and last is not None and event.timestamp < last:
        return Decision(Outcome.SUPERSEDED, state, reason=f"a newer {aspect} change is already applied")
    if aspect == "status" and state.status is Status.UNSUBSCRIBED:
        return Decision(Outcome.SUPERSEDED, state, reason="Unsubscribed is final")
    outcome = OUTCOME_OF[event.action]
    truth = delivery.truth
    if delivery.operation is OperationStatus.NOT_FOUND and aspect == "status":
        # No operation stands behind the event, so only the subscription can confirm it (a
        # forged or misdirected delivery in `api` mode, where no token vouches for it).
        if truth is None:
            return Decision(Outcome.NEEDS_TRUTH, state, reason="no operation stands behind it: the subscription says")
        if truth.status is not outcome.to:
            reason = f"no operation stands behind it and the marketplace shows {truth.status.value}"
            return _explained(Outcome.NOT_APPLIED, state, delivery, now, reason)
    if event.action is Action.RENEW:
        if truth is None:
            return Decision(Outcome.NEEDS_TRUTH, state, reason="Renew takes the new term from the marketplace")
        renewed = replace(state, term=truth.term, is_free_trial=truth.is_free_trial)
        return _changed(Outcome.APPLIED, state, apply_event(renewed, event, None), delivery, now, outcome.change)
    if event.action is Action.ACTIVATE and truth is not None:
        # The term starts at activation: only the subscription that confirms it carries its dates.
        activated = apply_event(adopt(state, truth, None), event, outcome.to)
        return _changed(Outcome.APPLIED, state, activated, delivery, now, outcome.change)
    new = apply_event(state, event, outcome.to if aspect == "status" else None)
    return _changed(Outcome.APPLIED, state, new, delivery, now, outcome.change)


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
    kind = ChangeKind.RESYNCED if outcome is Outcome.RESYNCED else change
    if after.status is Status.UNSUBSCRIBED and kind not in (ChangeKind.UNSUBSCRIBED, ChangeKind.RESYNCED):
        # A change that happened before the Unsubscribe but arrived after it (order is not
        # guaranteed) is kept in the history; the product, told of the end, must not be told
        # to provision a plan or seats again.
        return Decision(outcome, after, (*leading, RecordHistory(entry)))
    return Decision(outcome, after, (*leading, RecordHistory(entry), NotifyProduct(kind, after)))


def _explained(
    outcome: Outcome,
    state: Subscription | None,
    delivery: Delivery,
    now: datetime,
    reason: str,
    before: Subscription | None = None,
) -> Decision:
    """A decision that applies nothing of the event's own, recorded with its reason."""
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
