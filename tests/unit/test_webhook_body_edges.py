"""Bodies at the edges of what JSON allows: whatever the webhook accepts, processing can read, and
what it cannot take is a clear 400, never a 5xx."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from lifecycle.domain.records import DeliveryStatus
from lifecycle.entrypoints.processor import Disposition, handle_message
from lifecycle.parsing import MAX_ID_CHARS
from tests.functions import Stack, new_id, stack


@pytest.fixture
def env() -> Stack:
    return stack()


def suspend_body(env: Stack) -> dict[str, object]:
    subscription, _ = env.marketplace.purchase("contoso-seats", "team", 5, activated=True)
    operation = env.marketplace.suspend(subscription["id"], deliver=False)
    return env.marketplace.webhook_payload(str(operation["id"]))


@pytest.mark.parametrize(
    ("name", "encode"),
    [
        ("a UTF-8 byte-order mark", lambda text: b"\xef\xbb\xbf" + text.encode()),
        ("UTF-16", lambda text: text.encode("utf-16")),
        ("UTF-32 without a BOM", lambda text: text.encode("utf-32-le")),
    ],
)
def test_a_body_json_can_decode_is_accepted_and_processed(
    env: Stack, name: str, encode: Callable[[str], bytes]
) -> None:
    payload = suspend_body(env)

    answer = env.worker.webhook.receive(None, encode(json.dumps(payload)))

    assert answer.status == 200, name
    [message] = env.queue.sent
    handled = handle_message(message, env.worker.processing, env.queue, env.worker.clock)
    assert handled.disposition is Disposition.COMPLETE, handled.reason
    record = env.store.delivery(str(payload["subscriptionId"]), str(payload["id"]))
    assert record is not None
    assert record.status is DeliveryStatus.APPLIED


def test_a_body_that_is_not_valid_utf8_is_a_400(env: Stack) -> None:
    answer = env.worker.webhook.receive(None, b'{"id": "\xff\xfe\xfa", "subscriptionId": "s", "action": "Renew"}')

    assert answer.status == 400
    assert "not JSON" in answer.body["error"]


def test_json_nested_too_deeply_is_a_400_not_a_crash(env: Stack) -> None:
    answer = env.worker.webhook.receive(None, b'{"id": ' + b"[" * 5000 + b"]" * 5000 + b"}")

    assert answer.status == 400
    assert "nested too deeply" in answer.body["error"]


@pytest.mark.parametrize("field", ["id", "subscriptionId"])
def test_an_id_longer_than_any_real_one_is_a_400_naming_the_field(env: Stack, field: str) -> None:
    body = {"id": new_id(), "subscriptionId": new_id(), "action": "Renew", field: "x" * (MAX_ID_CHARS + 1)}

    answer = env.worker.webhook.receive(None, json.dumps(body).encode())

    assert answer.status == 400
    assert repr(field) in answer.body["error"]
    assert env.queue.sent == []


def test_a_subscription_id_in_another_case_is_processed_as_the_marketplaces_own(env: Stack) -> None:
    payload = suspend_body(env)
    shouted = {**payload, "subscriptionId": str(payload["subscriptionId"]).upper()}

    assert env.worker.webhook.receive(None, json.dumps(shouted).encode()).status == 200
    [message] = env.queue.sent
    assert message.session_id == payload["subscriptionId"]
    handled = handle_message(message, env.worker.processing, env.queue, env.worker.clock)

    assert handled.disposition is Disposition.COMPLETE, handled.reason
    snapshot = env.store.load(str(payload["subscriptionId"]))
    assert snapshot is not None
    assert snapshot.subscription.status.value == "Suspended"
