"""The control surface: a person (through the CLI) plays the marketplace over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from lifecycle.sandbox import Sandbox
from tests.sandbox.receiver import Receiver


@pytest.fixture
def control(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.control_url, trust_env=False) as client:
        yield client


def purchase(control: httpx.Client, **extra: object) -> dict[str, Any]:
    response = control.post("/purchases", json={"offerId": "contoso-seats", "planId": "team", "quantity": 2, **extra})
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_purchase_returns_the_subscription_and_its_token(control: httpx.Client) -> None:
    bought = purchase(control)
    assert bought["subscription"]["saasSubscriptionStatus"] == "PendingFulfillmentStart"
    assert bought["token"]


def test_invalid_purchase_is_400(control: httpx.Client) -> None:
    assert control.post("/purchases", json={"offerId": "contoso-seats", "planId": "team"}).status_code == 400


def test_customer_change_is_delivered_and_recorded(
    sandbox: Sandbox, control: httpx.Client, receiver: Receiver
) -> None:
    subscription_id = purchase(control, activated=True)["subscription"]["id"]
    operation = control.post(f"/subscriptions/{subscription_id}/change-quantity", json={"quantity": 4}).json()
    receiver.wait_for(1)
    sandbox.webhooks.wait(operation["id"])
    record = control.get(f"/operations/{operation['id']}").json()
    assert (record["action"], record["status"], [d["status"] for d in record["deliveries"]]) == (
        "ChangeQuantity", "InProgress", [200]
    )


def test_missed_delivery_changes_the_truth_silently(control: httpx.Client, receiver: Receiver) -> None:
    subscription_id = purchase(control, activated=True)["subscription"]["id"]
    suspended = control.post(f"/subscriptions/{subscription_id}/suspend", json={"deliver": False})
    assert suspended.json()["status"] == "Succeeded"
    assert receiver.deliveries == []


def test_redeliver_sends_duplicates(control: httpx.Client, receiver: Receiver) -> None:
    subscription_id = purchase(control, activated=True)["subscription"]["id"]
    operation = control.post(f"/subscriptions/{subscription_id}/renew", json={"deliver": False}).json()
    result = control.post(f"/operations/{operation['id']}/redeliver", json={"times": 2}).json()
    assert result["statuses"] == [200, 200]
    assert [d.body["id"] for d in receiver.deliveries] == [operation["id"]] * 2


def test_faults_injected_here_hit_the_api(sandbox: Sandbox, control: httpx.Client) -> None:
    assert control.post("/faults", json={"status": 503, "times": 1}).status_code == 201
    response = httpx.get(f"{sandbox.api_url}/saas/subscriptions", params={"api-version": "2018-08-31"})
    assert response.status_code == 503


def test_unknown_action_is_404(control: httpx.Client) -> None:
    subscription_id = purchase(control, activated=True)["subscription"]["id"]
    assert control.post(f"/subscriptions/{subscription_id}/explode").status_code == 404


def test_keys_rotate_and_retire(control: httpx.Client) -> None:
    assert len(control.post("/keys/rotate").json()["kids"]) == 2
    assert len(control.post("/keys/retire").json()["kids"]) == 1
