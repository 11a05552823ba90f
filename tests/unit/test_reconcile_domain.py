"""Reconciliation's pure judgement: findings, remedies, repairs and their stamps."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lifecycle.domain.events import Action, Source
from lifecycle.domain.fingerprint import fingerprint
from lifecycle.domain.history import Outcome
from lifecycle.domain.lifecycle import Delivery, decide
from lifecycle.domain.model import ChangeTimes, Operation, OperationStatus, Status, Subscription, Term
from lifecycle.domain.reconcile import (
    REACHABLE,
    FindingKind,
    Recent,
    Remedy,
    Repair,
    absent,
    compare,
    outstanding,
    pending_since,
    plan_repair,
    stuck,
)
from tests.unit.builders import T0, event, later, subscription

S = Status


def repair_of(
    ours: Subscription | None, theirs: Subscription, seen: datetime = T0, recent: Recent | None = None
) -> Repair | None:
    return plan_repair(ours, theirs, run_id="run-1", now=later(10), seen=seen, recent=recent)


def test_an_identical_subscription_has_no_findings() -> None:
    ours = subscription()
    assert compare(ours, replace(ours, last_operation_id="op-9", changed_at=ChangeTimes(status=T0))) == ()


def test_a_subscription_we_lack_is_adopted() -> None:
    theirs = subscription()
    [finding] = compare(None, theirs)
    assert (finding.kind, finding.remedy, finding.theirs) == (FindingKind.MISSING_LOCALLY, Remedy.ADOPT, "Subscribed")


@pytest.mark.parametrize(("field", "value", "kind"), [
    ("plan_id", "business", FindingKind.PLAN),
    ("quantity", 12, FindingKind.QUANTITY),
    ("term", Term("P1Y", date(2026, 12, 1), date(2027, 11, 30)), FindingKind.TERM),
    ("is_free_trial", True, FindingKind.TERM),
    ("auto_renew", False, FindingKind.AUTO_RENEW),
    ("beneficiary_tenant_id", "another-tenant", FindingKind.DETAILS),
    ("status", S.SUSPENDED, FindingKind.STATUS),
])
def test_each_drifted_aspect_is_one_finding_to_repair(field: str, value: Any, kind: FindingKind) -> None:
    ours = subscription()
    [finding] = compare(ours, replace(ours, **{field: value}))
    assert (finding.kind, finding.remedy) == (kind, Remedy.REPAIR)


def test_a_finding_shows_values_as_a_person_reads_them() -> None:
    ours = subscription(term=Term("P1M", date(2026, 12, 7), date(2027, 1, 6)), is_free_trial=False)
    theirs = replace(ours, term=Term("P1M", None, None), is_free_trial=True)
    (finding,) = compare(ours, theirs)
    assert (finding.ours, finding.theirs) == ("term=P1M 2026-12-07..2027-01-06 is_free_trial=false",
                                              "term=P1M is_free_trial=true")


def test_several_drifted_aspects_are_several_findings() -> None:
    ours = subscription()
    kinds = [f.kind for f in compare(ours, replace(ours, status=S.SUSPENDED, plan_id="business", quantity=9))]
    assert kinds == [FindingKind.STATUS, FindingKind.PLAN, FindingKind.QUANTITY]


@pytest.mark.parametrize(("ours", "theirs"), [
    (S.UNSUBSCRIBED, S.SUBSCRIBED),  # Unsubscribed is final: something else is wrong
    (S.SUBSCRIBED, S.PENDING_FULFILLMENT_START),  # the marketplace shows a status we already left
    (S.SUSPENDED, S.NOT_STARTED),
])
def test_a_status_the_lifecycle_cannot_reach_is_reported_with_everything_else(ours: Status, theirs: Status) -> None:
    mine = subscription(ours)
    findings = compare(mine, replace(mine, status=theirs, plan_id="business"))
    assert {f.remedy for f in findings} == {Remedy.REPORT}
    assert "left for a person" in findings[0].detail
    assert repair_of(mine, replace(mine, status=theirs)) is None


@pytest.mark.parametrize(("ours", "theirs"), [
    (S.PENDING_FULFILLMENT_START, S.SUBSCRIBED), (S.PENDING_FULFILLMENT_START, S.SUSPENDED),
    (S.SUBSCRIBED, S.SUSPENDED), (S.SUSPENDED, S.SUBSCRIBED), (S.SUSPENDED, S.UNSUBSCRIBED),
    (S.NOT_STARTED, S.UNSUBSCRIBED),
])
def test_missed_events_are_repaired_even_several_steps_on(ours: Status, theirs: Status) -> None:
    assert compare(subscription(ours), subscription(theirs))[0].remedy is Remedy.REPAIR


def test_reachability_is_drawn_from_the_lifecycle_table() -> None:
    assert REACHABLE[S.UNSUBSCRIBED] == {S.UNSUBSCRIBED}
    assert REACHABLE[S.PENDING_FULFILLMENT_START] == {S.PENDING_FULFILLMENT_START, S.SUBSCRIBED, S.SUSPENDED,
                                                      S.UNSUBSCRIBED}


def test_the_fingerprint_ignores_bookkeeping_and_sees_every_compared_field() -> None:
    ours = subscription()
    assert fingerprint(ours) == fingerprint(replace(ours, last_operation_id="x", changed_at=ChangeTimes(plan=T0)))
    assert fingerprint(ours) != fingerprint(replace(ours, auto_renew=False))
    assert fingerprint(ours) != fingerprint(replace(ours, term=Term("P1M", date(2026, 11, 1), date(2026, 12, 1))))


def test_adoption_stamps_every_aspect_with_when_the_truth_was_seen() -> None:
    theirs = subscription()
    repair = repair_of(None, theirs)
    assert repair is not None
    assert repair.state == replace(theirs, changed_at=ChangeTimes(T0, T0, T0, T0))
    entry = repair.entry
    assert (entry.source, entry.outcome, entry.operation_id) == (Source.RECONCILIATION, Outcome.RESYNCED,
                                                                 "reconcile:run-1")
    assert ("plan_id", "", "team") in [(c.field, c.before, c.after) for c in entry.changes]


def test_a_repair_keeps_our_bookkeeping_and_raises_only_the_repaired_aspects() -> None:
    early, late = T0 - timedelta(hours=1), T0 + timedelta(hours=1)
    ours = subscription(last_operation_id="op-7", last_operation_at=early,
                        changed_at=ChangeTimes(status=early, plan=late, quantity=None, term=early))
    theirs = replace(ours, last_operation_id=None, changed_at=ChangeTimes(), plan_id="business", quantity=9)
    repair = repair_of(ours, theirs)
    assert repair is not None
    assert (repair.state.last_operation_id, repair.state.last_operation_at) == ("op-7", early)
    # plan was stamped later than `seen` already: never lowered; quantity had no time: now it has
    assert repair.state.changed_at == ChangeTimes(status=early, plan=late, quantity=T0, term=early)
    assert [(c.field, c.before, c.after) for c in repair.entry.changes] == [("plan_id", "team", "business"),
                                                                             ("quantity", "5", "9")]


RECENT = Recent(since=T0, until=T0 + timedelta(minutes=10))  # a run at T0 + 5 min, settling 5 min


@pytest.mark.parametrize(("field", "value", "aspect", "kind"), [
    ("plan_id", "business", "plan", FindingKind.PLAN),
    ("quantity", 9, "quantity", FindingKind.QUANTITY),
    ("status", S.SUSPENDED, "status", FindingKind.STATUS),
    ("term", Term("P1Y", date(2027, 1, 1), date(2027, 12, 31)), "term", FindingKind.TERM),
])
def test_drift_in_an_aspect_a_webhook_set_recently_waits_for_the_next_run(
    field: str, value: Any, aspect: str, kind: FindingKind
) -> None:
    # A webhook set it a minute into the window: the list may still show the subscription as it was.
    ours = subscription(changed_at=replace(ChangeTimes(), **{aspect: T0 + timedelta(minutes=1)}))
    theirs = replace(ours, **{field: value}, auto_renew=False)
    findings = compare(ours, theirs, recent=RECENT)
    assert [(f.kind, f.remedy) for f in findings] == [(kind, Remedy.WAIT),
                                                      (FindingKind.AUTO_RENEW, Remedy.WAIT)]  # all of it waits
    assert f"a webhook set our {aspect} at " in findings[0].detail
    assert repair_of(ours, theirs, recent=RECENT) is None


@pytest.mark.parametrize("stamp", [T0, T0 + timedelta(days=365)], ids=["at the window's start", "far in the future"])
def test_a_stamp_outside_the_window_is_repaired(stamp: datetime) -> None:
    # A repair stamps `seen`, which a later run's window starts after: a repaired aspect never
    # waits. A stamp past the window's end (a clock far ahead, a forged time) would wait for ever.
    ours = subscription(changed_at=ChangeTimes(plan=stamp))
    theirs = replace(ours, plan_id="business")
    assert [f.remedy for f in compare(ours, theirs, recent=RECENT)] == [Remedy.REPAIR]
    assert [f.remedy for f in compare(ours, theirs)] == [Remedy.REPAIR]  # no window given: nothing waits


def test_a_recent_stamp_on_an_aspect_that_agrees_does_not_hold_the_others() -> None:
    ours = subscription(changed_at=ChangeTimes(status=T0 + timedelta(minutes=1), plan=T0 - timedelta(days=1)))
    repair = repair_of(ours, replace(ours, plan_id="business"), recent=RECENT)
    assert repair is not None
    assert repair.state.plan_id == "business"


def test_a_status_that_cannot_follow_ours_is_reported_even_when_ours_is_recent() -> None:
    ours = subscription(S.UNSUBSCRIBED, changed_at=ChangeTimes(status=T0 + timedelta(minutes=1)))
    findings = compare(ours, replace(ours, status=S.SUBSCRIBED), recent=RECENT)
    assert [f.remedy for f in findings] == [Remedy.REPORT]


@pytest.mark.parametrize(("ours", "theirs", "action"), [
    (subscription(), subscription(S.SUSPENDED), Action.SUSPEND),
    (subscription(S.SUSPENDED), subscription(), Action.REINSTATE),
    (subscription(S.PENDING_FULFILLMENT_START), subscription(), Action.ACTIVATE),
    (subscription(), subscription(plan_id="business"), Action.CHANGE_PLAN),
    (subscription(), subscription(quantity=8), Action.CHANGE_QUANTITY),
    (subscription(), subscription(auto_renew=False), Action.UNKNOWN),
])
def test_the_history_names_the_action_that_explains_the_drift(
    ours: Subscription, theirs: Subscription, action: Action
) -> None:
    theirs = replace(theirs, id=ours.id)
    repair = repair_of(ours, theirs)
    assert repair is not None
    assert repair.entry.action is action


def test_a_descriptive_change_is_written_in_the_history_too() -> None:
    ours = subscription(name="old name")
    repair = repair_of(ours, replace(ours, name="new name"))
    assert repair is not None
    assert [(c.field, c.after) for c in repair.entry.changes] == [("name", "new name")]


def test_nothing_to_repair_when_nothing_differs() -> None:
    ours = subscription()
    assert repair_of(ours, ours) is None


def test_a_webhook_older_than_the_repair_cannot_undo_it_while_a_newer_one_applies() -> None:
    ours = subscription(changed_at=ChangeTimes(plan=T0 - timedelta(days=1)))
    repair = repair_of(ours, replace(ours, plan_id="enterprise"), seen=T0)
    assert repair is not None
    old = Delivery(event=event(Action.CHANGE_PLAN, ours, at=T0 - timedelta(minutes=1), plan_id="business",
                               status=OperationStatus.SUCCEEDED), operation=OperationStatus.SUCCEEDED)
    assert decide(repair.state, old, later(20)).outcome is Outcome.SUPERSEDED
    new = replace(old, event=replace(old.event, timestamp=T0 + timedelta(minutes=1)))
    applied = decide(repair.state, new, later(20))
    assert (applied.outcome, applied.state.plan_id if applied.state else None) == (Outcome.APPLIED, "business")


def test_a_purchase_pending_longer_than_allowed_is_stuck() -> None:
    theirs = subscription(S.PENDING_FULFILLMENT_START)
    since = T0 - timedelta(hours=30)
    finding = stuck(theirs.id, theirs.status, since, T0, timedelta(hours=24))
    assert finding is not None
    assert (finding.kind, finding.remedy) == (FindingKind.STUCK_PENDING, Remedy.REPORT)
    assert "30 h" in finding.detail


@pytest.mark.parametrize(("status", "hours_ago"), [
    (S.PENDING_FULFILLMENT_START, 2), (S.SUBSCRIBED, 90), (S.PENDING_FULFILLMENT_START, None),
])
def test_a_young_or_active_or_undated_purchase_is_not_stuck(status: Status, hours_ago: int | None) -> None:
    since = None if hours_ago is None else T0 - timedelta(hours=hours_ago)
    assert stuck("s", status, since, T0, timedelta(hours=24)) is None


def test_pending_since_is_the_last_status_change_of_a_pending_subscription() -> None:
    assert pending_since(subscription(S.PENDING_FULFILLMENT_START, changed_at=ChangeTimes(status=T0))) == T0
    assert pending_since(subscription(changed_at=ChangeTimes(status=T0))) is None


def test_only_operations_still_pending_are_outstanding() -> None:
    ops = [Operation(id=f"op-{s.value}", subscription_id="s", action="ChangePlan", status=s, timestamp=T0)
           for s in OperationStatus]
    found = outstanding("s", ops)
    assert [f.theirs for f in found] == ["NotStarted", "InProgress"]
    assert all(f.kind is FindingKind.OUTSTANDING_OPERATION and f.remedy is Remedy.REPORT for f in found)


def test_absent_is_reported_only() -> None:
    finding = absent(subscription(), confirmed=False)
    assert (finding.kind, finding.remedy) == (FindingKind.ABSENT_REMOTELY, Remedy.REPORT)
    assert "not re-checked" in finding.detail


aspects = st.fixed_dictionaries({
    "status": st.sampled_from(list(Status)),
    "plan_id": st.sampled_from(["team", "business"]),
    "quantity": st.sampled_from([None, 5, 9]),
    "auto_renew": st.booleans(),
    "is_free_trial": st.booleans(),
    "name": st.sampled_from(["", "Contoso"]),
})


@given(ours=aspects, theirs=aspects)
def test_a_repair_leaves_nothing_to_find_and_an_unsafe_pair_changes_nothing(
    ours: dict[str, Any], theirs: dict[str, Any]
) -> None:
    mine = subscription(**ours)
    truth = replace(subscription(**theirs), id=mine.id)
    repair = repair_of(mine, truth)
    findings = compare(mine, truth)
    if repair is None:
        assert findings == () or any(f.remedy is Remedy.REPORT for f in findings)
    else:
        assert compare(repair.state, truth) == ()
        assert fingerprint(repair.state) == fingerprint(truth)
