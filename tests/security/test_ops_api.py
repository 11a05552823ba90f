"""The read-only ops API against OData injection and missing keys, on the real table store.

Every filter, the entitlements tenant and the route id get values that would widen an
OData filter if they reached one unescaped. Each must be refused (400) with nothing of
the table in the answer; the stored rows are on Azurite, so a leak would show as rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlencode

import azure.functions as func
import pytest

from lifecycle.clock import SystemClock
from lifecycle.domain.model import Status
from lifecycle.domain.records import Commit
from lifecycle.entrypoints import ops
from lifecycle.services.query import QueryService
from lifecycle.services.query_filter import FILTERS
from lifecycle.store.table import TableSubscriptionStore
from tests.unit.builders import subscription

pytestmark = pytest.mark.azurite

KEY = "a-configured-key"
BASE = "http://127.0.0.1:7071/api/"
INJECTIONS = [
    "Suspended' or '1' eq '1",
    "x' or PartitionKey ne '",
    "') or true or ('",
    "Subscribed' and RowKey ge '",
    "%27%20or%20%271%27%20eq%20%271",
    "*",
    "' or 1 eq 1 --",
]


@pytest.fixture(scope="module")
def service(azurite_connection_string: str) -> Iterator[QueryService]:
    with TableSubscriptionStore.from_connection_string(azurite_connection_string, "opsinject") as store:
        for status in (Status.SUBSCRIBED, Status.SUSPENDED, Status.UNSUBSCRIBED):
            store.commit(Commit(subscription=subscription(status), expected=None))
        yield QueryService(store, SystemClock())


def request(route: str, params: dict[str, str] | None = None, route_params: dict[str, str] | None = None,
            headers: dict[str, str] | None = None) -> func.HttpRequest:
    query = f"?{urlencode(params)}" if params else ""
    return func.HttpRequest("GET", BASE + route + query, params=params or {}, route_params=route_params or {},
                            headers={"x-functions-key": KEY} if headers is None else headers, body=b"")


def refused(response: func.HttpResponse) -> bool:
    body = response.get_body().decode()
    return response.status_code == 400 and '"error"' in body and '"subscriptions"' not in body


@pytest.mark.parametrize("value", INJECTIONS)
@pytest.mark.parametrize("name", FILTERS)
def test_an_injected_filter_value_is_refused_never_widened(service: QueryService, name: str, value: str) -> None:
    handler = ops.keyed(KEY, lambda req: ops.subscriptions(req, lambda: service))
    assert refused(handler(request("subscriptions", {name: value})))


@pytest.mark.parametrize("value", INJECTIONS)
def test_an_injected_tenant_or_id_is_refused(service: QueryService, value: str) -> None:
    entitlements = ops.keyed(KEY, lambda req: ops.entitlements(req, lambda: service))
    one = ops.keyed(KEY, lambda req: ops.subscription(req, lambda: service))
    events = ops.keyed(KEY, lambda req: ops.events(req, lambda: service))
    assert refused(entitlements(request("entitlements", {"tenantId": value})))
    assert refused(one(request("subscriptions/x", route_params={"id": value})))
    assert refused(events(request("subscriptions/x/events", route_params={"id": value})))


def test_an_uninjected_filter_still_answers(service: QueryService) -> None:
    handler = ops.keyed(KEY, lambda req: ops.subscriptions(req, lambda: service))
    response = handler(request("subscriptions", {"status": "Suspended"}))
    assert response.status_code == 200
    assert '"Suspended"' in response.get_body().decode()


@pytest.mark.parametrize("headers", [{}, {"x-functions-key": ""}, {"x-functions-key": "wrong"},
                                     {"x-functions-key": KEY.upper()}, {"x-functions-key": KEY + " "}])
def test_no_key_or_a_wrong_key_is_401_before_anything_is_read(service: QueryService,
                                                                headers: dict[str, str]) -> None:
    def must_not_run(_: func.HttpRequest) -> func.HttpResponse:
        raise AssertionError("the handler ran without the key")

    response = ops.keyed(KEY, must_not_run)(request("subscriptions", headers=headers))
    assert response.status_code == 401
