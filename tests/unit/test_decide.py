"""The lifecycle table and `decide`, exhaustively over every (status, action) pair."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from lifecycle.domain.events import Action, Source, UnknownAction
from lifecycle.domain.history import Acknowledge, ChangeKind, NotifyProduct, Outcome, RecordHistory
from lifecycle.domain.lifecycle import ACKNOWLEDGED, TABLE, Delivery, decide, mermaid
from lifecycle.domain.model import OperationStatus, Status, Term
from tests.unit.builders import T0, event, later, subscription

ACTIONS = [a for a in Action if a is not Action.UNKNOWN]
PAIRS = list(itertools.product(Status, ACTIONS))
NOW = later(60)


def delivery(ev, operation=OperationStatus.SUCCEEDED, **kw):  # type: ignore[no-untyped-def]
    return Delivery(event=ev, operation=operation, **kw)


def effects_of(decision, kind):  # type: ignore[no-untyped-def]
    return [e for e in decision.effects if isinstance(e, kind)]


@pytest.mark.parametrize(("status", "action"), PAIRS, ids=[f"{s.value}-{a.value}" for s, a in PAIRS])
def test_final_operation_on_local_state_applies_legal_pairs_and_asks_for_truth_otherwise(status, action):
    state = subscription(status)
    decision = decide(state, delivery(event(action, state)), NOW)
    transition = TABLE.get((status, action))
    if transition is None or transition.needs_truth:
        assert decision.outcome is Outcome.NEEDS_TRUTH
        assert decision.state is state
        assert decision.effects == ()
    else:
        assert decision.outcome is Outcome.APPLIED
        assert decision.state is not None
        assert decision.state.status is transition.to
        assert not effects_of(decision, Acknowledge)


@pytest.mark.parametrize(("status", "action"), PAIRS, ids=[f"{s.value}-{a.value}" for s, a in PAIRS])
def test_final_operation_with_truth_adopts_the_truth(status, action):
    state = subscription(status)
    transition = TABLE.get((status, action))
    truth = replace(state, status=transition.to) if transition else state
    ev = event(action, state, plan_id=state.plan_id, quantity=state.quantity)
    decision = decide(state, delivery(ev, truth=truth), NOW)
    assert decision.state is not None
    assert decision.state.status is truth.status
    assert decision.state.last_operation_id == ev.operation_id
    expected = Outcome.APPLIED if transition else Outcome.RESYNCED
    assert decision.outcome is expected


@pytest.mark.parametrize(("status", "action"), PAIRS, ids=[f"{s.value}-{a.value}" for s, a in PAIRS])
def test_pending_operation_is_acknowledged_by_the_table(status, action):
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
        assert with_truth.outcome is Outcome.ILLEGAL
        assert effects_of(with_truth, Acknowledge) == [Acknowledge(pending.event.operation_id, False)]
        assert with_truth.state == state
        assert effects_of(with_truth, RecordHistory)[0].entry.reason


def test_change_plan_applies_the_target_plan_and_records_one_change():
    state = subscription()
    decision = decide(state, delivery(event(Action.CHANGE_PLAN, state, plan_id="business")), NOW)
    assert decision.state is not None
    assert decision.state.plan_id == "business"
    [record] = effects_of(decision, RecordHistory)
    assert [(c.field, c.before, c.after) for c in record.entry.changes] == [("plan_id", "team", "business")]
    assert effects_of(decision, NotifyProduct)[0].change is ChangeKind.PLAN_CHANGED


def test_change_quantity_applies_the_target_quantity():
    state = subscription()
    decision = decide(state, delivery(event(Action.CHANGE_QUANTITY, state, quantity=9)), NOW)
    assert decision.state is not None
    assert decision.state.quantity == 9


def test_an_operation_applied_before_is_a_duplicate_with_no_effects():
    state = subscription()
    ev = event(Action.SUSPEND, state)
    decision = decide(state, delivery(ev, applied_before=True), NOW)
    assert (decision.outcome, decision.state, decision.effects) == (Outcome.DUPLICATE, state, ())


def test_the_last_operation_applied_is_recognised_as_a_duplicate_without_a_delivery_record():
    state = subscription(last_operation_id="op-1", last_operation_at=T0)
    decision = decide(state, delivery(event(Action.SUSPEND, state, op="op-1")), NOW)
    assert decision.outcome is Outcome.DUPLICATE
    assert decision.effects == ()


@pytest.mark.parametrize("status", [OperationStatus.FAILED, OperationStatus.CONFLICT])
def test_a_failed_operation_is_not_applied_but_explained(status):
    state = subscription()
    decision = decide(state, delivery(event(Action.CHANGE_PLAN, state), status), NOW)
    assert decision.outcome is Outcome.NOT_APPLIED
    assert decision.state == state
    [record] = effects_of(decision, RecordHistory)
    assert record.entry.changes == ()
    assert status.value in record.entry.reason


def test_an_unknown_action_is_ignored_and_recorded():
    state = subscription()
    ev = UnknownAction(operation_id="op", subscription_id=state.id, name="Transfer")
    decision = decide(state, delivery(ev, OperationStatus.NOT_FOUND), NOW)
    assert decision.outcome is Outcome.IGNORED
    assert decision.state == state
    assert "Transfer" in effects_of(decision, RecordHistory)[0].entry.reason


def test_a_stale_final_event_asks_for_truth_then_adopts_it_without_moving_time_back():
    state = subscription(last_operation_id="newer", last_operation_at=later(10), quantity=8)
    old_plan = event(Action.CHANGE_PLAN, state, at=later(5), plan_id="business")
    assert decide(state, delivery(old_plan), NOW).outcome is Outcome.NEEDS_TRUTH
    truth = replace(state, plan_id="business", last_operation_id=None, last_operation_at=None)
    decision = decide(state, delivery(old_plan, truth=truth), NOW)
    assert decision.state is not None
    assert (decision.state.plan_id, decision.state.quantity) == ("business", 8)
    assert decision.state.last_operation_at == later(10)
    assert decision.state.last_operation_id == "newer"


def test_a_stale_event_whose_effect_the_truth_no_longer_shows_is_resynced():
    suspended_then_reinstated = subscription(last_operation_id="reinstate", last_operation_at=later(10))
    late_suspend = event(Action.SUSPEND, suspended_then_reinstated, at=later(5))
    decision = decide(suspended_then_reinstated, delivery(late_suspend, truth=suspended_then_reinstated), NOW)
    assert decision.outcome is Outcome.RESYNCED
    assert decision.state is not None
    assert decision.state.status is Status.SUBSCRIBED
    assert decision.effects == ()


def test_a_pending_change_is_decided_even_when_older_than_the_last_event():
    state = subscription(last_operation_id="x", last_operation_at=later(10))
    ev = event(Action.CHANGE_QUANTITY, state, at=later(5), quantity=6)
    decision = decide(state, delivery(ev, OperationStatus.IN_PROGRESS), NOW)
    assert decision.outcome is Outcome.APPLIED
    assert decision.state is not None
    assert decision.state.quantity == 6
    assert decision.state.last_operation_at == later(10)


def test_an_unknown_subscription_needs_truth_then_starts_from_it():
    truth = subscription()
    ev = event(Action.CHANGE_PLAN, truth, plan_id="business")
    assert decide(None, delivery(ev, OperationStatus.IN_PROGRESS), NOW).outcome is Outcome.NEEDS_TRUTH
    decision = decide(None, delivery(ev, OperationStatus.IN_PROGRESS, truth=truth), NOW)
    assert decision.outcome is Outcome.APPLIED
    assert decision.state is not None
    assert decision.state.plan_id == "business"
    assert effects_of(decision, RecordHistory)[0].entry.changes  # everything is new here


def test_renew_takes_the_new_term_from_the_truth():
    state = subscription()
    renewed = replace(state, term=Term("P1M", later(60 * 24 * 30).date(), later(60 * 24 * 60).date()))
    ev = event(Action.RENEW, state, status=OperationStatus.SUCCEEDED)
    decision = decide(state, delivery(ev, truth=renewed), NOW)
    assert decision.outcome is Outcome.APPLIED
    assert decision.state is not None
    assert decision.state.term == renewed.term
    assert effects_of(decision, NotifyProduct)[0].change is ChangeKind.RENEWED


def test_history_entries_carry_source_operation_and_event_time():
    state = subscription()
    ev = event(Action.SUSPEND, state, at=later(3))
    decision = decide(state, delivery(ev, source=Source.REPLAY), NOW)
    [record] = effects_of(decision, RecordHistory)
    assert (record.entry.source, record.entry.operation_id) == (Source.REPLAY, ev.operation_id)
    assert (record.entry.event_time, record.entry.recorded_at) == (later(3), NOW)


def test_the_mermaid_diagram_lists_every_transition_of_the_table():
    diagram = mermaid()
    for (status, action), transition in TABLE.items():
        assert f"{status.value} --> {transition.to.value}: {action.value}" in diagram
