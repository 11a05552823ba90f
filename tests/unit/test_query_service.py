"""The query service on the fake store: filters judged on current state, pages, history, entitlements."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest

from lifecycle.domain.events import Action, Source
from lifecycle.domain.history import HistoryEntry, Outcome
from lifecycle.domain.model import Status, Subscription, Term
from lifecycle.domain.records import Commit, Snapshot
from lifecycle.errors import ConcurrencyConflict, InvalidQuery, UnknownSubscription
from lifecycle.ports import Indexed, Lookup
from lifecycle.services.query import QueryService
from lifecycle.services.query_filter import parse_query
from tests.fakes import FakeSubscriptionStore
from tests.unit.builders import T0, subscription

TENANT = str(uuid.uuid4())


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now


@pytest.fixture
def store() -> FakeSubscriptionStore:
    return FakeSubscriptionStore()


@pytest.fixture
def service(store: FakeSubscriptionStore) -> QueryService:
    return QueryService(store, FixedClock(T0))


def put(store: FakeSubscriptionStore, sub: Subscription) -> Snapshot:
    return store.commit(Commit(subscription=sub, expected=None))


def ids(service: QueryService, **params: str) -> list[str]:
    return sorted(s.id for s in service.subscriptions(parse_query(params)).subscriptions)


def test_filters_combine_and_each_must_hold(store: FakeSubscriptionStore, service: QueryService) -> None:
    wanted = put(store, subscription(Status.SUSPENDED, plan_id="gold", beneficiary_tenant_id=TENANT)).subscription
    put(store, subscription(Status.SUBSCRIBED, plan_id="gold", beneficiary_tenant_id=TENANT))
    put(store, subscription(Status.SUSPENDED, plan_id="team", beneficiary_tenant_id=TENANT))
    assert ids(service, status="Suspended", plan="gold", tenant=TENANT) == [wanted.id]


def test_the_false_side_of_a_flag_is_answered_by_a_full_scan(store: FakeSubscriptionStore,
                                                             service: QueryService) -> None:
    trial = put(store, subscription(is_free_trial=True)).subscription
    paid = put(store, subscription(is_free_trial=False)).subscription
    assert ids(service, freeTrial="false") == [paid.id]
    assert ids(service, freeTrial="true") == [trial.id]


def test_renewals_at_risk_are_active_with_auto_renew_off_and_ending_soon(
    store: FakeSubscriptionStore, service: QueryService
) -> None:
    def sub(days: int, **fields: object) -> str:
        end = T0.date() + timedelta(days=days)
        fields = {"auto_renew": False, "term": Term("P1M", end - timedelta(days=30), end), **fields}
        return put(store, subscription(**fields)).subscription.id  # type: ignore[arg-type]

    at_risk = {sub(5), sub(30, status=Status.SUSPENDED)}
    sub(31)
    sub(5, auto_renew=True)
    sub(5, status=Status.UNSUBSCRIBED)
    assert ids(service, renewalsWithinDays="30") == sorted(at_risk)


def test_a_stale_index_hit_is_judged_on_the_current_state(store: FakeSubscriptionStore,
                                                          service: QueryService) -> None:
    first = put(store, subscription(Status.SUBSCRIBED))
    with pytest.raises(ConcurrencyConflict):  # a lost race leaves a "status|Suspended" row behind
        put(store, replace(first.subscription, status=Status.SUSPENDED))
    assert [hit.key for hit in store.find(Lookup(Indexed.STATUS, "Suspended"))] == [first.subscription.id]
    assert ids(service, status="Suspended") == []


def test_pages_follow_each_other_to_the_end(store: FakeSubscriptionStore, service: QueryService) -> None:
    every = {put(store, subscription(Status.SUSPENDED)).subscription.id for _ in range(7)}
    for _ in range(5):
        put(store, subscription(Status.SUBSCRIBED))
    seen: list[str] = []
    params = {"status": "Suspended", "limit": "3"}
    while True:
        page = service.subscriptions(parse_query(params))
        seen += [s.id for s in page.subscriptions]
        assert len(page.subscriptions) <= 3
        if page.continuation is None:
            break
        params["continuation"] = page.continuation
    assert sorted(seen) == sorted(every)


@pytest.mark.parametrize(("matching", "limit"), [(2, "2"), (1, "1"), (2, "5")])
def test_the_last_page_hands_out_no_token(store: FakeSubscriptionStore, service: QueryService,
                                          matching: int, limit: str) -> None:
    for _ in range(matching):
        put(store, subscription(Status.SUSPENDED))
    put(store, subscription(Status.SUBSCRIBED))
    page = service.subscriptions(parse_query({"status": "Suspended", "limit": limit}))
    assert (len(page.subscriptions), page.continuation) == (matching, None)


def test_a_token_is_handed_out_only_when_another_row_matches(store: FakeSubscriptionStore,
                                                             service: QueryService) -> None:
    every = {put(store, subscription(Status.SUBSCRIBED, is_test=False)).subscription.id for _ in range(2)}
    for _ in range(30):  # after the matches in key order, or among them: none of them matches
        put(store, subscription(Status.SUBSCRIBED, is_test=True))
    first = service.subscriptions(parse_query({"test": "false", "limit": "1"}))
    assert first.continuation is not None
    second = service.subscriptions(parse_query({"test": "false", "limit": "1", "continuation": first.continuation}))
    assert {s.id for s in first.subscriptions + second.subscriptions} == every
    assert (len(second.subscriptions), second.continuation) == (1, None)


def test_a_rare_combination_answers_a_short_page_and_a_token(store: FakeSubscriptionStore,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lifecycle.services.query.MAX_EXAMINED", 30)
    for _ in range(100):  # far more than one request examines
        put(store, subscription(Status.SUBSCRIBED, is_test=True))
    page = QueryService(store, FixedClock(T0)).subscriptions(parse_query({"test": "false"}))
    assert page.subscriptions == ()
    assert page.continuation is not None


def test_one_subscription_and_its_history_newest_first(store: FakeSubscriptionStore, service: QueryService) -> None:
    sub = subscription()
    entries = tuple(HistoryEntry(subscription_id=sub.id, operation_id=f"op-{n}", action=Action.RENEW,
                                 source=Source.WEBHOOK, outcome=Outcome.APPLIED, recorded_at=T0) for n in (1, 2))
    store.commit(Commit(subscription=sub, expected=None, history=entries))
    assert service.subscription(sub.id) == (sub, 2)
    assert [e.operation_id for e in service.history(sub.id)] == ["op-2", "op-1"]


@pytest.mark.parametrize("typed", [str.upper, lambda sid: sid.replace("-", ""), lambda sid: "{" + sid + "}"])
def test_a_subscription_is_found_however_its_guid_is_typed(
    store: FakeSubscriptionStore, service: QueryService, typed: Callable[[str], str]
) -> None:
    sub = subscription()
    entry = HistoryEntry(subscription_id=sub.id, operation_id="op-1", action=Action.RENEW, source=Source.WEBHOOK,
                         outcome=Outcome.APPLIED, recorded_at=T0)
    store.commit(Commit(subscription=sub, expected=None, history=(entry,)))

    assert service.subscription(typed(sub.id)) == (sub, 1)
    assert [e.operation_id for e in service.history(typed(sub.id))] == ["op-1"]


def test_an_unknown_subscription_and_a_malformed_id_are_told_apart(service: QueryService) -> None:
    with pytest.raises(UnknownSubscription):
        service.subscription(str(uuid.uuid4()))
    with pytest.raises(UnknownSubscription):
        service.history(str(uuid.uuid4()))
    with pytest.raises(InvalidQuery) as refused:
        service.subscription("x' or 1 eq 1")
    assert str(refused.value) == "subscription id \"x' or 1 eq 1\" is not a GUID"


def test_entitlements_are_the_latest_subscribed_one_per_offer(store: FakeSubscriptionStore,
                                                              service: QueryService) -> None:
    def owned(offer: str, status: Status, start: date, **fields: object) -> Subscription:
        term = Term("P1M", start, start + timedelta(days=30))
        sub = subscription(status, **{"offer_id": offer, "beneficiary_tenant_id": TENANT, "term": term, **fields})
        return put(store, sub).subscription

    owned("seats", Status.SUBSCRIBED, date(2026, 1, 1))
    newer = owned("seats", Status.SUBSCRIBED, date(2026, 6, 1), plan_id="business")
    owned("seats", Status.SUBSCRIBED, date(2026, 9, 1), beneficiary_tenant_id=str(uuid.uuid4()))
    owned("storage", Status.SUSPENDED, date(2026, 6, 1))
    owned("backup", Status.UNSUBSCRIBED, date(2026, 6, 1))
    owned("backup", Status.PENDING_FULFILLMENT_START, date(2026, 7, 1))
    found = service.entitlements(TENANT.upper())
    assert [(e.offer_id, e.subscription_id, e.plan_id) for e in found] == [("seats", newer.id, "business")]


def test_entitlements_of_a_malformed_tenant_are_refused(service: QueryService) -> None:
    with pytest.raises(InvalidQuery, match="tenantId 'nobody' is not a GUID"):
        service.entitlements("nobody")
