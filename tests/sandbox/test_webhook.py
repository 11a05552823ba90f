"""The webhook sender against a loopback receiver: signing, the 10-second rule, retries."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from random import Random

import httpx
import jwt
import pytest

from lifecycle.sandbox import Decider, Sandbox
from lifecycle.settings import MARKETPLACE_API_APP_ID
from tests.sandbox.conftest import eventually, trusting
from tests.sandbox.receiver import Received, Receiver

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$")


def subscribed(sandbox: Sandbox, quantity: int = 3) -> str:
    return str(sandbox.marketplace.purchase("contoso-seats", "team", quantity, activated=True)[0]["id"])


def verified_claims(sandbox: Sandbox, delivery: Received) -> dict[str, object]:
    """Verify a delivery's bearer token as a publisher would: keys from the metadata's jwks_uri."""
    token = delivery.headers["authorization"].removeprefix("Bearer ")
    metadata = httpx.get(sandbox.openid_metadata_url, verify=trusting(sandbox), trust_env=False).json()
    jwks = httpx.get(metadata["jwks_uri"], verify=trusting(sandbox), trust_env=False).json()
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWK(next(k for k in jwks["keys"] if k["kid"] == kid)).key
    return dict(jwt.decode(token, key, algorithms=["RS256"], audience=sandbox.client_id))


@pytest.mark.parametrize(
    ("version", "issuer", "party"),
    [(2, "https://login.microsoftonline.com/{tid}/v2.0", "azp"), (1, "https://sts.windows.net/{tid}/", "appid")],
)
def test_delivery_is_signed_like_microsofts(
    sandbox: Sandbox, receiver: Receiver, version: int, issuer: str, party: str
) -> None:
    sandbox.webhooks.token_version = version
    operation = sandbox.marketplace.suspend(subscribed(sandbox), deliver=False)
    sandbox.webhooks.deliver(operation)
    claims = verified_claims(sandbox, receiver.deliveries[0])
    assert claims["iss"] == issuer.format(tid=sandbox.tenant_id)
    assert (claims["tid"], claims[party]) == (sandbox.tenant_id, MARKETPLACE_API_APP_ID)
    assert {"iat", "nbf", "exp"} <= set(claims)


def test_payload_is_microsofts_camel_case_json(sandbox: Sandbox, receiver: Receiver) -> None:
    operation = sandbox.marketplace.change_quantity(subscribed(sandbox), 5, deliver=False)
    sandbox.webhooks.deliver(operation)
    delivery = receiver.deliveries[0]
    assert delivery.headers["content-type"] == "application/json"
    body = delivery.body
    assert (body["id"], body["action"], body["status"], body["quantity"]) == (
        operation["id"], "ChangeQuantity", "InProgress", 5
    )
    assert body["operationRequestSource"] == "Azure"
    assert TIMESTAMP.match(body["timeStamp"])
    assert body["subscription"]["quantity"] == 3
    assert {"activityId", "publisherId", "offerId", "planId", "subscriptionId", "purchaseToken"} <= set(body)


def test_4xx_answer_rejects_a_change(sandbox: Sandbox, receiver: Receiver) -> None:
    subscription_id = subscribed(sandbox)
    receiver.default = 400
    operation = sandbox.marketplace.change_quantity(subscription_id, 5, deliver=False)
    result = sandbox.webhooks.deliver(operation)
    assert result.statuses == (400,)
    assert sandbox.marketplace.get_operation(subscription_id, operation["id"])["status"] == "Failed"
    assert sandbox.marketplace.record(operation["id"]).decided_by is Decider.PUBLISHER_4XX
    assert sandbox.marketplace.get(subscription_id)["quantity"] == 3


def test_4xx_answer_does_not_undo_a_notification(sandbox: Sandbox, receiver: Receiver) -> None:
    subscription_id = subscribed(sandbox)
    receiver.default = 400
    operation = sandbox.marketplace.suspend(subscription_id, deliver=False)
    sandbox.webhooks.deliver(operation)
    assert sandbox.marketplace.get(subscription_id)["saasSubscriptionStatus"] == "Suspended"


def test_2xx_without_patch_is_auto_accepted(sandbox: Sandbox) -> None:
    sandbox.marketplace.auto_accept_seconds = 0.2
    subscription_id = subscribed(sandbox)
    operation = sandbox.marketplace.change_quantity(subscription_id, 7, deliver=False)
    assert sandbox.webhooks.deliver(operation).statuses == (200,)
    eventually(lambda: sandbox.marketplace.get(subscription_id)["quantity"] == 7)
    assert sandbox.marketplace.record(operation["id"]).decided_by is Decider.AUTO_ACCEPT


def test_5xx_is_retried_until_answered(sandbox: Sandbox, receiver: Receiver) -> None:
    receiver.answers = [500, 503]
    operation = sandbox.marketplace.renew(subscribed(sandbox), deliver=False)
    result = sandbox.webhooks.deliver(operation)
    assert result.statuses == (500, 503, 200)
    assert [a.status for a in sandbox.marketplace.record(operation["id"]).deliveries] == [500, 503, 200]


def test_unreachable_webhook_is_retried_then_given_up(sandbox: Sandbox, receiver: Receiver) -> None:
    operation = sandbox.marketplace.unsubscribe(subscribed(sandbox), deliver=False)
    receiver.stop()
    result = sandbox.webhooks.deliver(operation)
    assert result.statuses == (None, None, None)
    assert all(result.errors)


@pytest.fixture
def impatient(receiver: Receiver) -> Iterator[Sandbox]:
    with Sandbox(receiver.url, webhook_timeout=0.3, auto_accept_seconds=0.3, retry_delays=()) as sandbox:
        yield sandbox


def test_no_answer_in_time_is_auto_accepted(impatient: Sandbox, receiver: Receiver) -> None:
    receiver.hold = True
    subscription_id = subscribed(impatient)
    operation = impatient.marketplace.change_quantity(subscription_id, 6, deliver=False)
    assert impatient.webhooks.deliver(operation).statuses == (None,)
    receiver.release()
    eventually(lambda: impatient.marketplace.get(subscription_id)["quantity"] == 6)


def test_duplicates_carry_the_same_operation(sandbox: Sandbox, receiver: Receiver) -> None:
    operation = sandbox.marketplace.suspend(subscribed(sandbox), deliver=False)
    sandbox.webhooks.deliver(operation, times=3)
    assert [d.body["id"] for d in receiver.deliveries] == [operation["id"]] * 3


def test_deliver_many_can_scramble_the_order(sandbox: Sandbox, receiver: Receiver) -> None:
    operations = [sandbox.marketplace.suspend(subscribed(sandbox), deliver=False)["id"] for _ in range(6)]
    expected = list(operations)
    Random(7).shuffle(expected)
    sandbox.webhooks.deliver_many(operations, shuffle=Random(7))
    assert [d.body["id"] for d in receiver.deliveries] == expected != operations


def test_changes_are_delivered_in_the_background(sandbox: Sandbox, receiver: Receiver) -> None:
    operation = sandbox.marketplace.change_quantity(subscribed(sandbox), 4)
    assert sandbox.webhooks.wait(operation["id"]).statuses == (200,)
    assert receiver.deliveries[0].body["id"] == operation["id"]


def patcher(api: httpx.Client, status: str = "Success") -> Callable[[Received], None]:
    """A publisher's acknowledgement, to run before or after the receiver answers."""

    def patch(delivery: Received) -> None:
        body = delivery.body
        url = f"/saas/subscriptions/{body['subscriptionId']}/operations/{body['id']}"
        api.patch(url, json={"status": status}).raise_for_status()

    return patch


def test_patch_after_answering_is_the_publishers_ack(sandbox: Sandbox, receiver: Receiver, api: httpx.Client) -> None:
    receiver.after_answer = patcher(api)
    subscription_id = subscribed(sandbox)
    operation = sandbox.marketplace.change_quantity(subscription_id, 9, deliver=False)
    sandbox.webhooks.deliver(operation)
    eventually(lambda: sandbox.marketplace.record(operation["id"]).decided_by is Decider.PUBLISHER_ACK)
    assert sandbox.marketplace.get(subscription_id)["quantity"] == 9
    assert sandbox.marketplace.protocol_errors() == []


def test_patch_before_answering_is_a_protocol_error(sandbox: Sandbox, receiver: Receiver, api: httpx.Client) -> None:
    sandbox.marketplace.protocol_grace_seconds = 0.05
    receiver.before_answer = patcher(api)
    operation = sandbox.marketplace.change_quantity(subscribed(sandbox), 9, deliver=False)
    sandbox.webhooks.deliver(operation)
    errors = sandbox.marketplace.record(operation["id"]).protocol_errors
    assert len(errors) == 1
    assert "before the webhook's HTTP response" in errors[0]


def test_raw_bodies_go_out_signed_outside_the_books(sandbox: Sandbox, receiver: Receiver) -> None:
    minimal = {"id": "op-1", "activityId": "a-1", "subscriptionId": "s-1", "timeStamp": "x", "action": "Transfer"}
    result = sandbox.webhooks.deliver_raw(minimal)
    assert result.statuses == (200,)
    assert receiver.deliveries[0].body == minimal
    assert verified_claims(sandbox, receiver.deliveries[0])["tid"] == sandbox.tenant_id
    assert sandbox.marketplace.records() == []
