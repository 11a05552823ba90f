"""Lenient parsing of webhook and API bodies: odd but real inputs accepted, nonsense refused precisely."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from lifecycle.domain.events import ChangePlan, ChangeQuantity, Suspend, UnknownAction
from lifecycle.domain.model import OperationStatus, Status
from lifecycle.errors import InvalidPayload
from lifecycle.parsing import load_json, parse_operation, parse_plan, parse_subscription, parse_webhook

FULL: dict[str, Any] = {
    "id": "74dfb4db-c193-4891-827d-eb05fbdc64b0",
    "activityId": "sample-activity",
    "publisherId": "contoso",
    "offerId": "contoso-seats",
    "planId": "business",
    "quantity": 20,
    "subscriptionId": "37f9dea2-4345-438f-b0bd-03d40d28c7e0",
    "timeStamp": "2023-02-10T18:48:58.4449937Z",
    "action": "ChangePlan",
    "status": "InProgress",
    "operationRequestSource": "Azure",
    "futureField": {"kept": "by the delivery record"},
    "subscription": {
        "id": "37f9dea2-4345-438f-b0bd-03d40d28c7e0",
        "name": "Test",
        "offerId": "contoso-seats",
        "planId": "team",
        "quantity": "5",
        "saasSubscriptionStatus": " Subscribed ",
        "beneficiary": {"tenantId": "b-tenant", "emailId": "someone@example.com"},
        "purchaser": {"tenantId": "p-tenant"},
        "term": {"startDate": "2023-02-10T00:00:00Z", "endDate": "2023-03-09T00:00:00Z", "termUnit": "P1M"},
        "autoRenew": True,
        "isTest": False,
    },
}


def test_a_full_change_plan_webhook_becomes_a_typed_event() -> None:
    event = parse_webhook(FULL)
    assert isinstance(event, ChangePlan)
    assert (event.plan_id, event.status) == ("business", OperationStatus.IN_PROGRESS)
    assert event.timestamp == datetime(2023, 2, 10, 18, 48, 58, 444993, tzinfo=UTC)
    assert event.subscription is not None
    assert event.subscription.status is Status.SUBSCRIBED
    assert event.subscription.quantity == 5
    assert event.subscription.term.start == date(2023, 2, 10)
    assert event.subscription.beneficiary_tenant_id == "b-tenant"


def test_a_minimal_webhook_is_enough() -> None:
    event = parse_webhook({"id": "op", "activityId": "a", "subscriptionId": "s", "timeStamp": "", "action": "Suspend"})
    assert isinstance(event, Suspend)
    assert (event.timestamp, event.subscription) == (None, None)


@pytest.mark.parametrize("quantity", [7, "7", " 7 ", 7.0])
def test_a_quantity_may_be_a_number_or_a_numeric_string(quantity: object) -> None:
    event = parse_webhook({"id": "o", "subscriptionId": "s", "action": "ChangeQuantity", "quantity": quantity})
    assert isinstance(event, ChangeQuantity)
    assert event.quantity == 7


@pytest.mark.parametrize("quantity", [None, "", "seven", "1e3"])
def test_change_quantity_without_a_usable_quantity_leaves_the_target_to_the_operation(quantity: object) -> None:
    # A 400 would reject the customer's change: the operation names the target instead.
    event = parse_webhook({"id": "o", "subscriptionId": "s", "action": "ChangeQuantity", "quantity": quantity})
    assert isinstance(event, ChangeQuantity)
    assert event.quantity is None


def test_a_minimal_change_plan_body_is_accepted_without_its_target() -> None:
    event = parse_webhook({"id": "o", "activityId": "a", "subscriptionId": "s", "action": "ChangePlan"})
    assert isinstance(event, ChangePlan)
    assert event.plan_id == ""


@pytest.mark.parametrize("name", ["Subscribe", "Transfer", "SomethingNew"])
def test_undocumented_actions_become_unknown_actions(name: str) -> None:
    event = parse_webhook({"id": "o", "subscriptionId": "s", "action": name})
    assert isinstance(event, UnknownAction)
    assert event.name == name


@pytest.mark.parametrize("missing", ["id", "subscriptionId", "action"])
def test_missing_required_fields_are_named(missing: str) -> None:
    body: dict[str, str | None] = {"id": "o", "subscriptionId": "s", "action": "Renew"}
    body[missing] = None
    with pytest.raises(InvalidPayload, match=missing):
        parse_webhook(body)


@pytest.mark.parametrize("status", ["Success", "Succeeded", "succeeded", " Succeeded "])
def test_old_and_new_success_spellings_are_one_status(status: str) -> None:
    event = parse_webhook({"id": "o", "subscriptionId": "s", "action": "Renew", "status": status})
    assert event.status is OperationStatus.SUCCEEDED


def test_action_matching_ignores_case() -> None:
    assert isinstance(parse_webhook({"id": "o", "subscriptionId": "s", "action": "suspend"}), Suspend)


@pytest.mark.parametrize("body", [b"not json", b"[1,2]", b"\xff\xfe", b'"text"'])
def test_a_body_that_is_not_a_json_object_is_refused(body: bytes) -> None:
    with pytest.raises(InvalidPayload):
        load_json(body)


ADVISORY_GARBLED: dict[str, dict[str, object]] = {
    "timeStamp": {"timeStamp": "yesterday"},
    "timeStamp past the calendar": {"timeStamp": "9999-12-31T23:59:59-01:00"},
    "status": {"status": "Pending"},
    "snapshot without a status": {"subscription": {"id": "s", "planId": "gold"}},
    "snapshot with an unknown status": {"subscription": {"id": "s", "saasSubscriptionStatus": "Active"}},
    "snapshot with a garbled term": {"subscription": {"id": "s", "saasSubscriptionStatus": "Subscribed",
                                                      "term": {"startDate": "n/a"}}},
}


@pytest.mark.parametrize("action", ["ChangePlan", "ChangeQuantity", "Suspend", "Unsubscribe"])
@pytest.mark.parametrize("garbled", list(ADVISORY_GARBLED), ids=str)
def test_an_advisory_field_that_cannot_be_read_is_left_out_not_refused(action: str, garbled: str) -> None:
    # A 400 would reject a plan or seat change, and lose any other delivery.
    body: dict[str, object] = {"id": "o", "subscriptionId": "s", "action": action, "planId": "gold", "quantity": 7}
    event = parse_webhook(body | ADVISORY_GARBLED[garbled])
    assert (event.operation_id, event.subscription_id, event.action.value) == ("o", "s", action)
    assert (event.timestamp, event.status, event.subscription) == (None, OperationStatus.NOT_STARTED, None)


def test_readable_advisory_fields_are_still_read() -> None:
    event = parse_webhook({"id": "o", "subscriptionId": "s", "action": "Renew", "status": "Succeeded",
                           "timeStamp": "2026-01-02T03:04:05.1234567Z",
                           "subscription": {"id": "s", "saasSubscriptionStatus": "Subscribed"}})
    assert event.timestamp is not None
    assert event.timestamp.isoformat() == "2026-01-02T03:04:05.123456+00:00"
    assert event.status is OperationStatus.SUCCEEDED
    assert event.subscription is not None
    assert event.subscription.status.value == "Subscribed"


def test_an_operation_with_a_bad_timestamp_is_refused_with_the_field_name() -> None:
    # The operations API is the authority the webhook defers to: there a garbled value is an error.
    with pytest.raises(InvalidPayload, match="timeStamp"):
        parse_operation({"id": "o", "status": "Succeeded", "timeStamp": "yesterday"})


def test_a_subscription_with_absent_optional_fields_gets_defaults() -> None:
    sub = parse_subscription({"id": "s", "saasSubscriptionStatus": "PendingFulfillmentStart", "quantity": ""})
    assert (sub.quantity, sub.is_free_trial, sub.term.start, sub.sandbox_type) == (None, False, None, "None")


def test_an_unknown_subscription_status_is_refused() -> None:
    with pytest.raises(InvalidPayload, match="saasSubscriptionStatus"):
        parse_subscription({"id": "s", "saasSubscriptionStatus": "Frozen"})


def test_operations_and_plans_parse_leniently() -> None:
    op = parse_operation({"id": "o", "status": "Succeeded", "quantity": "", "action": "ChangePlan"}, "s")
    assert (op.subscription_id, op.status, op.quantity) == ("s", OperationStatus.SUCCEEDED, None)
    plan = parse_plan({"planId": "team", "isPricePerSeat": True, "minQuantity": 1, "maxQuantity": "10"})
    assert plan.admits(10)
    assert not plan.admits(11)
    assert not plan.admits(0)


def test_a_per_seat_plan_without_a_minimum_takes_one_seat_at_least() -> None:
    plan = parse_plan({"planId": "team", "isPricePerSeat": True, "maxQuantity": 10})
    assert plan.admits(1)
    assert not plan.admits(0)
