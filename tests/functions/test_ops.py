"""The ops API's functions with real azure.functions requests, on a worker over the fake store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

import azure.functions as func
import pytest

from functions import ops as ops_functions
from lifecycle import bootstrap
from lifecycle.domain.model import Status
from lifecycle.domain.records import Commit
from lifecycle.entrypoints import ops
from tests.functions import Stack, answer, new_id, stack, user_function
from tests.unit.builders import subscription

BASE = "http://127.0.0.1:7071/api/"
KEY = "the-key"


def get(route: str, params: dict[str, str] | None = None, route_params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None) -> func.HttpRequest:
    query = f"?{urlencode(params)}" if params else ""
    return func.HttpRequest("GET", BASE + route + query, params=params or {}, route_params=route_params or {},
                            headers=headers or {}, body=b"")


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> Stack:
    made = stack()
    monkeypatch.setattr(bootstrap, "worker", lambda: made.worker)
    return made


def function(name: str) -> Callable[[func.HttpRequest], func.HttpResponse]:
    return user_function(ops_functions.bp, name)


def test_list_answers_the_matching_subscriptions_as_json(built: Stack) -> None:
    tenant = new_id()
    suspended = subscription(Status.SUSPENDED, beneficiary_tenant_id=tenant)
    built.store.commit(Commit(subscription=suspended, expected=None))
    built.store.commit(Commit(subscription=subscription(Status.SUBSCRIBED, beneficiary_tenant_id=tenant),
                              expected=None))
    status, body = answer(function("ops_subscriptions")(get("subscriptions", {"status": "Suspended",
                                                                               "tenant": tenant})))
    assert status == 200
    assert [s["id"] for s in body["subscriptions"]] == [suspended.id]
    assert body["subscriptions"][0]["term"] == {"unit": "P1M", "start": "2026-11-01", "end": "2026-11-30"}
    assert body["continuation"] is None


def test_a_page_hands_out_a_token_that_fetches_the_next(built: Stack) -> None:
    for _ in range(3):
        built.store.commit(Commit(subscription=subscription(Status.SUSPENDED), expected=None))
    _, first = answer(function("ops_subscriptions")(get("subscriptions", {"status": "Suspended", "limit": "2"})))
    params = {"status": "Suspended", "limit": "2", "continuation": first["continuation"]}
    _, second = answer(function("ops_subscriptions")(get("subscriptions", params)))
    assert len(first["subscriptions"]) == 2
    assert len(second["subscriptions"]) == 1
    assert {s["id"] for s in first["subscriptions"]}.isdisjoint(s["id"] for s in second["subscriptions"])


@pytest.mark.parametrize(("params", "message"), [
    ({"status": "Suspended' or '1' eq '1"}, "is not one of"),
    ({"tenant": "abc"}, "is not a GUID"),
    ({"limit": "1000"}, "limit '1000'"),
    ({"continuation": "garbage!"}, "continuation is not a token"),
])
def test_a_bad_filter_is_400_with_the_reason(built: Stack, params: dict[str, str], message: str) -> None:
    built.store.commit(Commit(subscription=subscription(Status.SUBSCRIBED), expected=None))
    status, body = answer(function("ops_subscriptions")(get("subscriptions", params)))
    assert status == 400
    assert message in body["error"]


def test_one_subscription_and_its_events(built: Stack) -> None:
    sub = subscription()
    built.store.commit(Commit(subscription=sub, expected=None))
    status, body = answer(function("ops_subscription")(get(f"subscriptions/{sub.id}", route_params={"id": sub.id})))
    assert (status, body["subscription"]["id"], body["version"]) == (200, sub.id, 0)
    status, events = answer(function("ops_subscription_events")(
        get(f"subscriptions/{sub.id}/events", route_params={"id": sub.id})))
    assert (status, events) == (200, {"subscriptionId": sub.id, "events": []})


@pytest.mark.parametrize("name", ["ops_subscription", "ops_subscription_events"])
def test_a_malformed_id_is_400_and_an_unknown_one_404(built: Stack, name: str) -> None:
    assert answer(function(name)(get("subscriptions/x", route_params={"id": "x' or 1 eq 1"})))[0] == 400
    unknown = new_id()
    status, body = answer(function(name)(get(f"subscriptions/{unknown}", route_params={"id": unknown})))
    assert status == 404
    assert unknown in body["error"]


def test_entitlements_of_a_tenant(built: Stack) -> None:
    tenant = new_id()
    sub = subscription(beneficiary_tenant_id=tenant)
    built.store.commit(Commit(subscription=sub, expected=None))
    built.store.commit(Commit(subscription=replace(subscription(Status.SUSPENDED, beneficiary_tenant_id=tenant),
                                                   offer_id="other"), expected=None))
    status, body = answer(function("ops_entitlements")(get("entitlements", {"tenantId": tenant})))
    assert status == 200
    assert body["tenantId"] == tenant
    assert [(e["offer_id"], e["subscription_id"]) for e in body["entitlements"]] == [("contoso-seats", sub.id)]
    assert answer(function("ops_entitlements")(get("entitlements")))[0] == 400  # no tenantId at all


def test_storage_down_is_503(built: Stack) -> None:
    built.store.fail_next_calls(5)
    status, body = answer(function("ops_subscriptions")(get("subscriptions", {"status": "Suspended"})))
    assert status == 503
    assert "retry" in body["error"]


@pytest.mark.parametrize(("headers", "params", "status"), [
    ({}, {}, 401),
    ({"x-functions-key": "wrong"}, {}, 401),
    ({}, {"code": "wrong"}, 401),
    ({"x-functions-key": KEY}, {}, 200),
    ({}, {"code": KEY}, 200),
])
def test_keyed_admits_only_the_configured_key(built: Stack, headers: dict[str, str], params: dict[str, str],
                                              status: int) -> None:
    handler = ops.keyed(KEY, lambda req: ops.subscriptions(req, lambda: built.worker.query))
    assert answer(handler(get("subscriptions", params, headers=headers)))[0] == status


def test_an_empty_configured_key_admits_nobody(built: Stack) -> None:
    handler = ops.keyed("", lambda req: ops.subscriptions(req, lambda: built.worker.query))
    assert answer(handler(get("subscriptions", headers={"x-functions-key": ""})))[0] == 401


def test_a_crash_is_500_without_its_message(built: Stack) -> None:
    def broken() -> Any:
        raise RuntimeError("AccountKey=secret")

    status, body = answer(ops.subscriptions(get("subscriptions"), broken))
    assert (status, body) == (500, {"error": "internal error"})
