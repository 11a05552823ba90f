"""The webhook in `jwt` mode against the sandbox's Entra: real keys over TLS, real signatures.

Every forged class is refused with 401 before anything is recorded; a key rotation
mid-run is followed (one refetch on the new kid); the signing keys being unreachable is
a 503, never a 4xx (on ChangePlan/ChangeQuantity a 4xx would reject the change).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifecycle.bootstrap import Worker, build
from lifecycle.sandbox import Sandbox
from lifecycle.settings import Settings
from tests.fakes.marketplace import InProcessMarketplaceApi
from tests.fakes.queue import FakeQueue
from tests.fakes.store import FakeSubscriptionStore


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(auto_accept_seconds=None) as running:
        yield running


def worker_for(sandbox: Sandbox, **env: str) -> tuple[Worker, FakeQueue, FakeSubscriptionStore]:
    settings = Settings.from_env(sandbox.settings_env() | {"WEBHOOK_ENQUEUE_DELAY_SECONDS": "0"} | env)
    api = InProcessMarketplaceApi(sandbox.marketplace)
    queue, store = FakeQueue(), FakeSubscriptionStore()
    return build(settings, store=store, queue=queue, api=api, webhook_api=api), queue, store


@pytest.fixture
def stack(sandbox: Sandbox) -> tuple[Worker, FakeQueue, FakeSubscriptionStore]:
    return worker_for(sandbox)


def suspend_body(sandbox: Sandbox) -> bytes:
    subscription, _ = sandbox.marketplace.purchase("contoso-seats", "team", 5, activated=True)
    operation = sandbox.marketplace.suspend(subscription["id"], deliver=False)
    return json.dumps(sandbox.marketplace.webhook_payload(str(operation["id"]))).encode()


def test_a_v2_and_a_v1_token_from_the_marketplace_are_accepted(sandbox, stack):
    worker, queue, _ = stack
    for version in (2, 1):
        token = sandbox.entra.webhook_token(version=version)
        assert worker.webhook.receive(f"Bearer {token}", suspend_body(sandbox)).status == 200
    assert len(queue.sent) == 2


FORGED: dict[str, dict[str, Any]] = {
    "wrong audience (another app of ours)": {"audience": str(uuid.uuid4())},
    "another tenant": {"tenant_id": str(uuid.uuid4())},
    "issued to another app than the marketplace": {"app_id": str(uuid.uuid4())},
    "expired": {"issued_at": int(time.time()) - 7200, "lifetime": 600},
    "not yet valid": {"issued_at": int(time.time()) + 3600},
    "signed by a key our tenant never published": {"unpublished_key": True},
}


@pytest.mark.parametrize("overrides", FORGED.values(), ids=FORGED.keys())
def test_forged_tokens_are_refused_and_nothing_is_recorded(sandbox, stack, overrides):
    worker, queue, store = stack
    body = suspend_body(sandbox)
    answer = worker.webhook.receive(f"Bearer {sandbox.entra.webhook_token(**overrides)}", body)
    assert answer.status == 401
    assert queue.sent == []
    payload = json.loads(body)
    assert store.delivery(payload["subscriptionId"], payload["id"]) is None


def test_a_key_rotated_mid_run_is_picked_up(sandbox, stack):
    worker, _, _ = stack
    assert worker.webhook.receive(f"Bearer {sandbox.entra.webhook_token()}", suspend_body(sandbox)).status == 200
    sandbox.entra.rotate_keys()
    try:
        rotated = sandbox.entra.webhook_token()
        assert worker.webhook.receive(f"Bearer {rotated}", suspend_body(sandbox)).status == 200
    finally:
        sandbox.entra.retire_old_keys()


def test_unreachable_signing_keys_answer_503_never_4xx(sandbox):
    worker, queue, _ = worker_for(sandbox, WEBHOOK_OPENID_METADATA_URL="https://127.0.0.1:9/nothing-listens-here")
    answer = worker.webhook.receive(f"Bearer {sandbox.entra.webhook_token()}", suspend_body(sandbox))
    assert answer.status == 503
    assert queue.sent == []


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=10,
)
FIELDS = ["id", "activityId", "subscriptionId", "action", "timeStamp", "status", "planId", "quantity",
          "subscription", "offerId", "operationRequestSource"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(
    st.binary(max_size=300),
    st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=8).map(lambda d: json.dumps(d).encode()),
))
def test_fuzzed_bodies_never_crash_and_never_answer_5xx(sandbox, stack, body):
    worker, _, _ = stack
    answer = worker.webhook.receive(f"Bearer {sandbox.entra.webhook_token()}", body)
    assert answer.status in (200, 400), answer
