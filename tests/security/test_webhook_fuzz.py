"""Fuzzed webhook bodies and headers: never an unhandled exception, never a 5xx.

Bodies go to the webhook service with a valid token; headers go through the shared HTTP
handler on real `azure.functions` request objects, with and without a valid token.
No fault is injected here, so any 5xx would be a bug (5xx is kept for transient faults).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import cast

import azure.functions as func
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifecycle.bootstrap import Worker, build
from lifecycle.entrypoints import http
from lifecycle.sandbox import Sandbox
from lifecycle.settings import Settings
from tests.fakes.marketplace import InProcessMarketplaceApi
from tests.fakes.queue import FakeQueue
from tests.fakes.store import FakeSubscriptionStore

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(auto_accept_seconds=None) as running:
        yield running


@pytest.fixture(scope="module")
def worker(sandbox: Sandbox) -> Worker:
    settings_ = Settings.from_env(sandbox.settings_env() | {"WEBHOOK_ENQUEUE_DELAY_SECONDS": "0"})
    api = InProcessMarketplaceApi(sandbox.marketplace)
    return build(settings_, store=FakeSubscriptionStore(), queue=FakeQueue(), api=api, webhook_api=api)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=10,
)
FIELDS = ["id", "activityId", "subscriptionId", "action", "timeStamp", "status", "planId", "quantity",
          "subscription", "offerId", "operationRequestSource"]


@FUZZ
@given(body=st.one_of(
    st.binary(max_size=300),
    st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=8).map(lambda d: json.dumps(d).encode()),
))
def test_fuzzed_bodies_never_crash_and_never_answer_5xx(sandbox: Sandbox, worker: Worker, body: bytes) -> None:
    answer = worker.webhook.receive(f"Bearer {sandbox.entra.webhook_token()}", body)
    assert answer.status in (200, 400), answer


HEADER_NAMES = st.sampled_from(["Authorization", "authorization", "AUTHORIZATION", "Content-Type",
                                "Content-Length", "Transfer-Encoding", "X-Ms-Requestid", "Host"]) | st.text(
    st.characters(min_codepoint=33, max_codepoint=126, blacklist_characters=":"), min_size=1, max_size=20)
HEADER_VALUES = st.text(max_size=80) | st.sampled_from(["Bearer", "Bearer ", "bearer x.y.z", "Bearer a.b",
                                                        "Basic Og==", "-1", "99999999999999999999", "chunked"])


def suspend_body(sandbox: Sandbox) -> bytes:
    subscription, _ = sandbox.marketplace.purchase("contoso-seats", "team", 5, activated=True)
    operation = sandbox.marketplace.suspend(subscription["id"], deliver=False)
    return json.dumps(sandbox.marketplace.webhook_payload(str(operation["id"]))).encode()


def post(worker: Worker, headers: dict[str, str], body: bytes) -> int:
    request = func.HttpRequest("POST", "http://127.0.0.1/api/marketplace/webhook", headers=headers, body=body)
    return cast(int, http.webhook(request, worker.webhook).status_code)  # azure.functions is untyped


@FUZZ
@given(headers=st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=6))
def test_fuzzed_headers_without_a_valid_token_are_refused_never_crash(
    sandbox: Sandbox, worker: Worker, headers: dict[str, str]
) -> None:
    status = post(worker, headers, suspend_body(sandbox))
    assert status == 401, headers


@FUZZ
@given(headers=st.dictionaries(HEADER_NAMES.filter(lambda n: n.lower() != "authorization"), HEADER_VALUES,
                               max_size=6))
def test_fuzzed_headers_beside_a_valid_token_do_not_change_the_answer(
    sandbox: Sandbox, worker: Worker, headers: dict[str, str]
) -> None:
    headers = headers | {"Authorization": f"Bearer {sandbox.entra.webhook_token()}"}
    assert post(worker, headers, suspend_body(sandbox)) == 200, headers
