"""The ops API's answers a caller reads: the local key check's 401s, and a last page without a token."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import azure.functions as func
import pytest

from lifecycle.domain.model import Status
from lifecycle.domain.records import Commit
from lifecycle.entrypoints import ops
from lifecycle.services.query import QueryService
from tests.fakes import FakeSubscriptionStore
from tests.unit.builders import T0, subscription

KEY = "the-local-key"
KEPT = "the key is in /somewhere/.local/ops-api-key"


class FixedClock:
    def now(self) -> Any:
        return T0


def request(params: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> func.HttpRequest:
    query = f"?{urlencode(params)}" if params else ""
    return func.HttpRequest("GET", "http://127.0.0.1:7071/api/subscriptions" + query, params=params or {},
                            headers=headers or {}, body=b"")


def answered(response: func.HttpResponse) -> tuple[int, Any]:
    return response.status_code, json.loads(response.get_body())


def never(_: func.HttpRequest) -> func.HttpResponse:
    raise AssertionError("the handler ran without the key")


def test_a_missing_key_is_401_saying_it_is_missing_and_where_the_key_is() -> None:
    status, body = answered(ops.keyed(KEY, never, kept=KEPT)(request()))
    assert status == 401
    assert body["error"].startswith("no function key given: send it in the x-functions-key header or as ?code=")
    assert KEPT in body["error"]


@pytest.mark.parametrize("given", [{"headers": {"x-functions-key": "guess-1234"}}, {"params": {"code": "guess-1234"}}])
def test_a_wrong_key_is_401_saying_it_does_not_match_without_echoing_it(given: dict[str, Any]) -> None:
    response = ops.keyed(KEY, never, kept=KEPT)(request(**given))
    status, body = answered(response)
    assert status == 401
    assert body["error"] == f"the function key given does not match ({KEPT})"
    assert b"guess-1234" not in response.get_body()
    assert KEY.encode() not in response.get_body()


def test_a_page_that_holds_the_last_match_has_a_null_continuation() -> None:
    store = FakeSubscriptionStore()
    for _ in range(2):
        store.commit(Commit(subscription=subscription(Status.SUSPENDED), expected=None))
    service = QueryService(store, FixedClock())
    status, body = answered(ops.subscriptions(request({"status": "Suspended", "limit": "2"}), lambda: service))
    assert status == 200
    assert (len(body["subscriptions"]), body["continuation"]) == (2, None)
