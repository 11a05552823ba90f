"""The lifecycle table and `decide`, exhaustively over every (status, action) pair."""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any, TypeVar

import pytest

from lifecycle.domain.changes import ASPECT
from lifecycle.domain.events import Action, Event, Source, UnknownAction
from lifecycle.domain.history import Acknowledge, ChangeKind, NotifyProduct, Outcome, RecordHistory
from lifecycle.domain.lifecycle import ACKNOWLEDGED, OUTCOME_OF, TABLE, Decision, Delivery, decide, mermaid
from lifecycle.domain.model import ChangeTimes, OperationStatus, Status, Term
from tests.unit.builders import T0, event, later, subscription

ACTIONS = [a for a in Action if a is not Action.UNKNOWN]
PAIRS = list(itertools.product(Status, ACTIONS))
NOW = later(60)
E = TypeVar("E")


def delivery(ev: Event, operation: OperationStatus = OperationStatus.SUCCEEDED, **kw: Any) -> Delivery:
    return Delivery(event=ev, operation=operation, **kw)


def effects_of(decision: Decision, kind: type[E]) -> list[E]:
    return [e for e in decision.effects if isinstance(e, kind)]


@pytest.mark.parametrize(("status", "action"), PAIRS, ids=[f"{s.value}-{a.value}" for s, a in PAIRS])
def test_a_final_operation_is_applied_to_its_aspect_without_asking_the_table_again(
    status: Status, action: Action
) -> None:
    state = subscription(status)
    decision = decide(state, delivery(event(action, state, plan_id="business", quantity=9)), NOW)
    assert not effects_of(decision, Acknowledge)
    if action is Action.RENEW:
        assert decision.outcome is Outcome.NEEDS_TRUTH
        return
    if ASPECT[action] == "status" and status is Status.UNSUBSCRIBED:
        assert (decision.outcome, decision.state) == (Outcome.SUPERSEDED, state)
        return
    assert decision.outcome is Outcome.APPLIED
    assert decision.state is not None
    expected_status = OUTCOME_OF[action].to if ASPECT[action] == "status" else status
    assert decision.state.status is expected_status
    assert decision.state.plan_id == ("business" if action is Action.CHANGE_PLAN else "team")
    assert decision.state.quantity == (9 if action is Action.CHANGE_QUANTITY else 5)
    assert getattr(decision.state.changed_at, ASPECT[action]) == T0


@pytest.mark.parametrize(("status", "action"), PAIRS, ids=[f"{s.value}-{a.value}" for s, a in PAIRS])
def test_pending_operation_is_acknowledged_by_the_table(status: Status, action: Action) -> None:
    state = subscription(status)
    pending = delivery(event(action, state), OperationStatus.IN_PROGRESS)
    decision = decide(state, pending, NOW)
    legal = (status, action) in TABLE
    if action not in ACKNOWLEDGED:
        # notify-only actions are never pending from our side: judged like final ones
        assert not effects_of(decision, Acknowledge)
    elif legal:
        assert decision.outcome is Outcome.APPLIED
        assert effects_of(decision, Acknowledge) == [Acknowledge(pending.event.operation_id, True)]
    else:
        assert decision.outcome is Outcome.NEEDS_TRUTH
        with_truth = decide(state, replace(pending, truth=state), NOW)
        if status is OUTCOME_OF[action].to:  # the truth already shows the change: confirmed, never refused
            assert with_truth.outcome is Outcome.APPLIED
            assert effects_of(with_truth, Acknowledge) == [Acknowledge(pending.event.operation_id, True)]
            return
        assert with_truth.outcome is Outcome.ILLEGAL
        assert effects_of(with_truth, Acknowledge) == [Acknowledge(pending.event.operation_id, False)]
        assert with_truth.state is not None
        assert replace(with_truth.state, changed_at=state.changed_at) == state
        assert effects_of(with_truth, RecordHistory)[0].entry.reason


def test_change_plan_applies_the_target_plan_and_records_one_change() -> None:
    state = subscription()
    decision = decide(state, delivery(event(Action.CHANGE_PLAN, state, plan_id="business")), NOW)
    assert decision.state is not None
    assert decision.state.plan_id == "business"
    [record] = effects_of(decision, RecordHistory)
    assert [(c.field, c.before, c.after) for c in record.entry.changes] == [("plan_id", "team", "business")]
    assert effects_of(decision, NotifyProduct)[0].change is ChangeKind.PLAN_CHANGED


def test_change_quantity_applies_the_target_quantity() -> None:
    state = subscription()
    decision = decide(state, delivery(event(Action.CHANGE_QUANTITY, state, quantity=9)), NOW)
    assert decision.state is not None
    assert decision.state.quantity == 9


def test_an_operation_applied_before_is_a_duplicate_with_no_effects() -> None:
    state = subscription()
    ev = event(Action.SUSPEND, state)
    decision = decide(state, delivery(ev, applied_before=True), NOW)
    assert (decision.outcome, decision.state, decision.effects) == (Outcome.DUPLICATE, state, ())


def test_the_last_operation_applied_is_recognised_as_a_duplicate_without_a_delivery_record() -> None:
    state = subscription(last_operation_id="op-1", last_operation_at=T0)
    decision = decide(state, delivery(event(Action.SUSPEND, state, op="op-1")), NOW)
    assert decision.outcome is Outcome.DUPLICATE
    assert decision.effects == ()


@pytest.mark.parametrize("status", [OperationStatus.FAILED, OperationStatus.CONFLICT])
def test_a_failed_operation_is_not_applied_but_explained(status: OperationStatus) -> None:
    state = subscription()
    decision = decide(state, delivery(event(Action.CHANGE_PLAN, state), status), NOW)
    assert decision.outcome is Outcome.NOT_APPLIED
    assert decision.state == state
    [record] = effects_of(decision, RecordHistory)
    assert record.entry.changes == ()
    assert status.value in record.entry.reason


def test_an_unknown_action_is_ignored_and_recorded() -> None:
    state = subscription()
    ev = UnknownAction(operation_id="op", subscription_id=state.id, name="Transfer")
    decision = decide(state, delivery(ev, OperationStatus.NOT_FOUND), NOW)
    assert decision.outcome is Outcome.IGNORED
    assert decision.state == state
    assert "Transfer" in effects_of(decision, RecordHistory)[0].entry.reason


def test_an_event_older_than_the_last_change_of_its_aspect_is_superseded() -> None:
    state = subscription(Status.SUBSCRIBED, changed_at=ChangeTimes(status=later(10)))
    late_suspend = event(Action.SUSPEND, state, at=later(5))
    decision = decide(state, delivery(late_suspend), NOW)
    assert (decision.outcome, decision.state, decision.effects) == (Outcome.SUPERSEDED, state, ())


def test_an_older_event_of_another_aspect_still_applies() -> None:
    suspended_later = subscription(Status.SUSPENDED, changed_at=ChangeTimes(status=later(10), quantity=later(1)))
    earlier_quantity = event(Action.CHANGE_QUANTITY, suspended_later, at=later(5), quantity=20)
    decision = decide(suspended_later, delivery(earlier_quantity), NOW)
    assert decision.outcome is Outcome.APPLIED
    assert decision.state is not None
    assert (decision.state.status, decision.state.quantity) == (Status.SUSPENDED, 20)
    assert decision.state.changed_at.quantity == later(5)


def test_no_status_follows_unsubscribed() -> None:
    ended = subscription(Status.UNSUBSCRIBED, changed_at=ChangeTimes(status=later(1)))
    decision = decide(ended, delivery(event(Action.REINSTATE, ended, at=later(9))), NOW)
    assert decision.outcome is Outcome.SUPERSEDED


def test_the_last_operation_time_only_moves_forward() -> None:
    state = subscription(last_operation_at=later(10))
    decision = decide(state, delivery(event(Action.CHANGE_PLAN, state, at=later(5))), NOW)
    assert decision.state is not None
    assert decision.state.last_operation_at == later(10)


def test_a_pending_change_is_decided_even_when_older_than_the_last_event() -> None:
    state = subscription(last_operation_id="x", last_operation_at=later(10))
    ev = event(Action.CHANGE_QUANTITY, state, at=later(5), quantity=6)
    decision = decide(state, delivery(ev, OperationStatus.IN_PROGRESS), NOW)
    assert decision.outcome is Outcome.APPLIED
    assert decision.state is not None
    assert decision.state.quantity == 6
    assert decision.state.last_operation_at == later(10)


def test_an_unknown_subscription_is_started_from_the_truth_for_a_final_event() -> None:
    truth = subscription(Status.SUSPENDED)
    ev = event(Action.SUSPEND, truth)
    assert decide(None, delivery(ev), NOW).outcome is Outcome.NEEDS_TRUTH
    decision = decide(None, delivery(ev, truth=truth), NOW)
    assert decision.outcome is Outcome.RESYNCED
    assert decision.state is not None
    assert decision.state.status is Status.SUSPENDED
    assert decision.state.changed_at.status == ev.timestamp


def test_an_unknown_subscription_needs_truth_then_starts_from_it() -> None:
    truth = subscription()
    ev = event(Action.CHANGE_PLAN, truth, plan_id="business")
    assert decide(None, delivery(ev, OperationStatus.IN_PROGRESS), NOW).outcome is Outcome.NEEDS_TRUTH
    decision = decide(None, delivery(ev, OperationStatus.IN_PROGRESS, truth=truth), NOW)
    assert decision.outcome is Outcome.APPLIED
    assert decision.state is not None
    assert decision.state.plan_id == "business"
    assert effects_of(decision, RecordHistory)[0].entry.changes  # everything is new here


def test_renew_takes_the_new_term_from_the_truth_and_nothing_else() -> None:
    state = subscription()
    renewed = replace(state, quantity=99, term=Term("P1M", later(60 * 24 * 30).date(), later(60 * 24 * 60).date()))
    ev = event(Action.RENEW, state, status=OperationStatus.SUCCEEDED)
    decision = decide(state, delivery(ev, truth=renewed), NOW)
    assert decision.outcome is Outcome.APPLIED
    assert decision.state is not None
    assert decision.state.term == renewed.term
    assert decision.state.quantity == 5
    assert effects_of(decision, NotifyProduct)[0].change is ChangeKind.RENEWED


def test_history_entries_carry_source_operation_and_event_time() -> None:
    state = subscription()
    ev = event(Action.SUSPEND, state, at=later(3))
    decision = decide(state, delivery(ev, source=Source.REPLAY), NOW)
    [record] = effects_of(decision, RecordHistory)
    assert (record.entry.source, record.entry.operation_id) == (Source.REPLAY, ev.operation_id)
    assert (record.entry.event_time, record.entry.recorded_at) == (later(3), NOW)


def test_the_mermaid_diagram_lists_every_transition_of_the_table() -> None:
    diagram = mermaid()
    for (status, action), transition in TABLE.items():
        assert f"{status.value} --> {transition.to.value}: {action.value}" in diagram


def test_a_pending_reinstate_the_truth_already_shows_is_confirmed_not_refused() -> None:
    # The marketplace auto-accepted it between our read of the operation and of the subscription.
    ours = subscription(Status.SUSPENDED)
    truth = replace(ours, status=Status.SUBSCRIBED)
    pending = delivery(event(Action.REINSTATE, ours), OperationStatus.IN_PROGRESS, truth=truth)
    decision = decide(ours, pending, NOW)
    assert decision.outcome is Outcome.APPLIED
    assert effects_of(decision, Acknowledge) == [Acknowledge(pending.event.operation_id, True)]
    [record] = effects_of(decision, RecordHistory)
    assert [(c.field, c.before, c.after) for c in record.entry.changes] == [("status", "Suspended", "Subscribed")]
    assert effects_of(decision, NotifyProduct)[0].change is ChangeKind.REINSTATED


STATUS_ACTIONS = [a for a in ACTIONS if ASPECT.get(a) == "status"]


@pytest.mark.parametrize("action", STATUS_ACTIONS, ids=lambda a: a.value)
def test_a_status_event_without_an_operation_is_applied_when_the_subscription_shows_it(action: Action) -> None:
    state = subscription(next(s for s, a in TABLE if a is action))
    truth = replace(state, status=OUTCOME_OF[action].to)
    decision = decide(state, delivery(event(action, state), OperationStatus.NOT_FOUND, truth=truth), NOW)
    assert decision.outcome is Outcome.APPLIED
    assert decision.state is not None
    assert decision.state.status is OUTCOME_OF[action].to


@pytest.mark.parametrize("action", STATUS_ACTIONS, ids=lambda a: a.value)
def test_a_status_event_without_an_operation_the_subscription_does_not_show_is_not_applied(action: Action) -> None:
    # In `api` mode no token vouches for a delivery: a forged Suspend must not suspend anyone.
    state = subscription(next(s for s, a in TABLE if a is action))
    decision = decide(state, delivery(event(action, state), OperationStatus.NOT_FOUND, truth=state), NOW)
    assert (decision.outcome, decision.state) == (Outcome.NOT_APPLIED, state)
    [recorded] = effects_of(decision, RecordHistory)
    assert f"the marketplace shows {state.status.value}" in recorded.entry.reason
    assert not effects_of(decision, NotifyProduct)


@pytest.mark.parametrize("action", STATUS_ACTIONS, ids=lambda a: a.value)
def test_a_status_event_without_an_operation_asks_for_the_subscription_first(action: Action) -> None:
    state = subscription(next(s for s, a in TABLE if a is action))
    decision = decide(state, delivery(event(action, state), OperationStatus.NOT_FOUND), NOW)
    assert (decision.outcome, decision.state, decision.effects) == (Outcome.NEEDS_TRUTH, state, ())


def test_the_table_is_the_marketplaces_lifecycle_as_written() -> None:
    # From MARKETPLACE.md's lifecycle, written out by hand: the exhaustive tests above derive
    # legality from TABLE itself, so a wrong row would pass them; it cannot pass this.
    S, A = Status, Action
    written = {
        (S.PENDING_FULFILLMENT_START, A.ACTIVATE): S.SUBSCRIBED,
        (S.PENDING_FULFILLMENT_START, A.UNSUBSCRIBE): S.UNSUBSCRIBED,
        (S.NOT_STARTED, A.UNSUBSCRIBE): S.UNSUBSCRIBED,
        (S.SUBSCRIBED, A.CHANGE_PLAN): S.SUBSCRIBED,  # only Subscribed can be updated
        (S.SUBSCRIBED, A.CHANGE_QUANTITY): S.SUBSCRIBED,
        (S.SUBSCRIBED, A.RENEW): S.SUBSCRIBED,
        (S.SUBSCRIBED, A.SUSPEND): S.SUSPENDED,
        (S.SUBSCRIBED, A.UNSUBSCRIBE): S.UNSUBSCRIBED,
        (S.SUSPENDED, A.REINSTATE): S.SUBSCRIBED,  # only Suspended can be reinstated
        (S.SUSPENDED, A.UNSUBSCRIBE): S.UNSUBSCRIBED,
    }
    assert {pair: transition.to for pair, transition in TABLE.items()} == written


@pytest.mark.parametrize("action", [Action.CHANGE_PLAN, Action.CHANGE_QUANTITY])
def test_a_change_arriving_after_the_unsubscribe_is_recorded_but_not_told_to_the_product(action: Action) -> None:
    # The change succeeded at +5, the Unsubscribe at +10 was delivered first: order is not guaranteed.
    gone = subscription(Status.UNSUBSCRIBED, changed_at=ChangeTimes(status=later(10)))
    change = event(action, gone, at=later(5), plan_id="business", quantity=8, status=OperationStatus.SUCCEEDED)

    decision = decide(gone, Delivery(event=change, operation=OperationStatus.SUCCEEDED), later(11))

    assert decision.state is not None
    assert decision.state.status is Status.UNSUBSCRIBED
    assert any(isinstance(effect, RecordHistory) for effect in decision.effects)
    assert not any(isinstance(effect, NotifyProduct) for effect in decision.effects)
