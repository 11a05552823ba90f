"""The queue function, driven with func.ServiceBusMessage objects from the library's own converter.

Returning completes the message (auto-complete); raising abandons it, so Service Bus
redelivers it and dead-letters it at the queue's max delivery count.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from functions import processor
from lifecycle import bootstrap
from lifecycle.domain.model import Status
from lifecycle.domain.records import DeliveryStatus
from lifecycle.entrypoints import http
from lifecycle.entrypoints.processor import MAX_ATTEMPTS
from lifecycle.errors import ConcurrencyConflict, StorageUnavailable
from lifecycle.queue.servicebus import ATTEMPT, SOURCE
from tests.functions import Stack, new_id, servicebus_message, stack, user_function

process_delivery = user_function(processor.bp, "process_delivery")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Stack:
    built = stack()
    monkeypatch.setattr(bootstrap, "worker", lambda: built.worker)
    return built


def suspended(env: Stack) -> dict[str, Any]:
    """The webhook payload of a Suspend that really happened at the marketplace."""
    subscription, _ = env.marketplace.purchase("contoso-seats", "team", 5, activated=True)
    operation = env.marketplace.suspend(subscription["id"], deliver=False)
    return env.marketplace.webhook_payload(str(operation["id"]))


def message_for(payload: dict[str, Any], **properties: Any) -> Any:
    return servicebus_message(json.dumps(payload), session_id=payload["subscriptionId"], message_id=payload["id"],
                              application_properties=properties or {ATTEMPT: 1, SOURCE: "webhook"})


def test_a_valid_message_is_processed_and_its_state_stored(env: Stack) -> None:
    payload = suspended(env)

    assert process_delivery(message_for(payload)) is None

    snapshot = env.store.load(payload["subscriptionId"])
    assert snapshot is not None
    assert snapshot.subscription.status is Status.SUSPENDED
    record = env.store.delivery(payload["subscriptionId"], payload["id"])
    assert record is not None
    assert record.status is DeliveryStatus.APPLIED


def test_an_etag_conflict_that_persists_raises_so_the_broker_redelivers(
    env: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = suspended(env)

    def conflicting(*args: Any, **kwargs: Any) -> None:
        raise ConcurrencyConflict("state: the row changed five times in a row")

    monkeypatch.setattr(env.worker.processing, "process", conflicting)
    with pytest.raises(ConcurrencyConflict):
        process_delivery(message_for(payload))
    assert env.queue.sent == []


def test_a_storage_outage_completes_the_message_and_schedules_a_retry_later(env: Stack) -> None:
    payload = suspended(env)
    env.store.fail_next_calls(100)

    assert process_delivery(message_for(payload)) is None

    [retry] = env.queue.sent
    assert (retry.session_id, retry.attempt, retry.body) == (payload["subscriptionId"], 2, json.dumps(payload))
    assert retry.scheduled_at is not None
    assert retry.scheduled_at - env.worker.clock.now() >= timedelta(seconds=25)  # not at once, as the broker would


def test_a_storage_outage_past_the_last_attempt_raises_so_the_broker_keeps_the_message(env: Stack) -> None:
    payload = suspended(env)
    env.store.fail_next_calls(100)

    with pytest.raises(StorageUnavailable):
        process_delivery(message_for(payload, **{ATTEMPT: MAX_ATTEMPTS, SOURCE: "webhook"}))
    assert env.queue.sent == []


def test_a_permanent_error_returns_and_the_delivery_is_recorded_failed(env: Stack) -> None:
    subscription, _ = env.marketplace.purchase("contoso-seats", "team", 5, activated=True)
    # A ChangeQuantity whose operation the marketplace never created: unverifiable, for good.
    payload = {**suspended(env), "id": new_id(), "subscriptionId": subscription["id"], "action": "ChangeQuantity",
               "status": "InProgress", "quantity": 7}

    assert process_delivery(message_for(payload)) is None

    record = env.store.delivery(subscription["id"], payload["id"])
    assert record is not None
    assert record.status is DeliveryStatus.FAILED
    assert record.reason
    assert json.loads(record.payload) == payload


def test_a_permanent_failure_is_logged_at_error_level_with_its_reason(env: Stack) -> None:
    subscription, _ = env.marketplace.purchase("contoso-seats", "team", 5, activated=True)
    payload = {**suspended(env), "id": new_id(), "subscriptionId": subscription["id"], "action": "ChangePlan",
               "status": "InProgress", "planId": "business"}

    with capture_logs() as logs:
        process_delivery(message_for(payload))

    [entry] = [e for e in logs if e["event"] == "message.dead_lettered"]
    assert entry["log_level"] == "error"
    assert (entry["subscription_id"], entry["operation_id"]) == (subscription["id"], payload["id"])
    assert entry["reason"]


def test_a_marketplace_outage_completes_the_message_and_schedules_a_retry(env: Stack) -> None:
    payload = suspended(env)
    env.marketplace.inject(status=503, times=100)

    assert process_delivery(message_for(payload)) is None

    [retry] = env.queue.sent
    assert (retry.session_id, retry.attempt) == (payload["subscriptionId"], 2)
    assert retry.message_id != payload["id"]


def test_a_retry_rescheduled_again_gets_its_operation_id_with_one_attempt_suffix(env: Stack) -> None:
    payload = suspended(env)
    env.marketplace.inject(status=503, times=100)
    retried = servicebus_message(json.dumps(payload), session_id=payload["subscriptionId"],
                                 message_id=f"{payload['id']}#2",
                                 application_properties={ATTEMPT: 2, SOURCE: "webhook"})

    process_delivery(retried)

    [retry] = env.queue.sent
    assert (retry.message_id, retry.attempt) == (f"{payload['id']}#3", 3)


def test_a_retry_given_up_on_is_logged_with_its_operation_id_and_its_message_id(env: Stack) -> None:
    payload = suspended(env)
    env.marketplace.inject(status=503, times=100)
    last = servicebus_message(json.dumps(payload), session_id=payload["subscriptionId"],
                              message_id=f"{payload['id']}#{MAX_ATTEMPTS}",
                              application_properties={ATTEMPT: MAX_ATTEMPTS, SOURCE: "webhook"})

    with capture_logs() as logs:
        process_delivery(last)

    [entry] = [e for e in logs if e["event"] == "message.dead_lettered"]
    assert (entry["operation_id"], entry["message_id"]) == (payload["id"], f"{payload['id']}#{MAX_ATTEMPTS}")
    assert all(e["operation_id"] == payload["id"] for e in logs if "operation_id" in e)


def test_a_body_that_is_not_a_webhook_raises_so_service_bus_keeps_it(env: Stack) -> None:
    msg = servicebus_message("not json", session_id="sub", message_id="op",
                             application_properties={ATTEMPT: 1, SOURCE: "webhook"})

    with pytest.raises(processor.UnrecordedDeadLetter):
        process_delivery(msg)


def test_a_marketplace_outage_past_the_last_attempt_is_recorded_failed(env: Stack) -> None:
    payload = suspended(env)
    env.marketplace.inject(status=503, times=100)

    assert process_delivery(message_for(payload, **{ATTEMPT: MAX_ATTEMPTS, SOURCE: "webhook"})) is None

    record = env.store.delivery(payload["subscriptionId"], payload["id"])
    assert record is not None
    assert record.status is DeliveryStatus.FAILED
    assert "unavailable" in record.reason
    assert env.queue.sent == []


def test_the_message_converts_with_its_ids_body_and_properties() -> None:
    body = json.dumps({"id": "op-1"})
    msg = servicebus_message(body, session_id="sub-1", message_id="op-1",
                             application_properties={ATTEMPT: 3, SOURCE: "replay"}, delivery_count=2)

    message = http.queue_message(msg)

    assert (message.session_id, message.message_id, message.body) == ("sub-1", "op-1", body)
    assert (message.attempt, message.source) == (3, "replay")


def test_missing_properties_default_to_a_first_webhook_attempt() -> None:
    msg = servicebus_message("{}", session_id="sub-1", message_id="op-1", application_properties={})

    message = http.queue_message(msg)

    assert (message.attempt, message.source) == (1, "webhook")


@pytest.mark.parametrize(("raw", "expected"), [("4", 4), ("four", 1), (0, 1), (None, 1)])
def test_an_odd_attempt_property_is_read_leniently(raw: object, expected: int) -> None:
    msg = servicebus_message("{}", session_id="s", message_id="m", application_properties={ATTEMPT: raw})

    assert http.queue_message(msg).attempt == expected
