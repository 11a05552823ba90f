"""The webhook function, driven with real func.HttpRequest objects and a worker on fakes.

Codes are the contract with the marketplace: 200 accepted, 400 malformed or rejected (on
ChangePlan/ChangeQuantity a 4xx IS the rejection), 401 unauthenticated, 413 too large, and
5xx for anything transient, so the marketplace retries instead of taking a refusal.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from structlog.testing import capture_logs

from functions import webhook
from lifecycle import bootstrap
from lifecycle.domain.records import Commit, DeliveryStatus
from lifecycle.entrypoints import http
from lifecycle.parsing import parse_subscription
from lifecycle.services.ingress import MAX_BODY_BYTES, WebhookAnswer
from lifecycle.settings import Settings, WebhookAuth
from tests.functions import Stack, answer, new_id, stack, user_function, webhook_request

marketplace_webhook = user_function(webhook.bp, "marketplace_webhook")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Stack:
    built = stack()
    monkeypatch.setattr(bootstrap, "worker", lambda: built.worker)
    return built


def suspend_payload(env: Stack) -> dict[str, Any]:
    subscription, _ = env.marketplace.purchase("contoso-seats", "team", 5, activated=True)
    operation = env.marketplace.suspend(subscription["id"], deliver=False)
    return env.marketplace.webhook_payload(str(operation["id"]))


def post(payload: dict[str, Any] | bytes, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return answer(marketplace_webhook(webhook_request(body, headers)))


def test_a_delivery_is_accepted_and_enqueued_by_subscription_and_operation(env: Stack) -> None:
    payload = suspend_payload(env)

    assert post(payload) == (200, {"status": "accepted"})
    [message] = env.queue.sent
    assert (message.session_id, message.message_id) == (payload["subscriptionId"], payload["id"])
    assert json.loads(message.body) == payload


def test_malformed_json_is_a_400(env: Stack) -> None:
    status, body = post(b'{"id": "op", "action": ')
    assert status == 400
    assert "JSON" in body["error"]
    assert env.queue.sent == []


def test_an_oversized_body_is_a_413(env: Stack) -> None:
    status, _ = post(b"{" + b" " * MAX_BODY_BYTES + b"}")
    assert status == 413


def test_a_body_at_the_size_limit_is_kept_whole_for_a_replay(env: Stack) -> None:
    payload = suspend_payload(env)
    filler = MAX_BODY_BYTES - len(json.dumps(payload | {"note": ""}).encode())
    body = payload | {"note": "x" * filler}
    assert len(json.dumps(body).encode()) == MAX_BODY_BYTES

    assert post(body) == (200, {"status": "accepted"})
    record = env.store.delivery(payload["subscriptionId"], payload["id"])
    assert record is not None
    assert json.loads(record.payload) == body  # what `dlq replay` would send back


def test_a_storage_outage_is_a_503_and_enqueues_nothing(env: Stack) -> None:
    env.store.fail_next_calls(1)

    status, _ = post(suspend_payload(env))

    assert status == 503
    assert env.queue.sent == []


def test_a_queue_outage_is_a_503(env: Stack) -> None:
    env.queue.fail_next_sends(1)

    status, _ = post(suspend_payload(env))

    assert status == 503


def test_an_unknown_action_is_answered_200(env: Stack) -> None:
    payload = {**suspend_payload(env), "id": new_id(), "action": "Transfer"}

    status, _ = post(payload)

    assert status == 200


def test_a_quantity_above_the_plans_maximum_is_rejected_with_a_reason(env: Stack) -> None:
    subscription, _ = env.marketplace.purchase("contoso-seats", "team", 5, activated=True)
    # The sandbox refuses such a change itself, so the delivery is written by hand.
    payload = {**suspend_payload(env), "id": new_id(), "subscriptionId": subscription["id"],
               "action": "ChangeQuantity", "status": "InProgress", "quantity": 99}

    status, body = post(payload)

    assert status == 400
    assert "99" in body["error"]
    assert "team" in body["error"]
    assert env.queue.sent == []


def test_a_change_the_marketplace_already_decided_is_accepted_not_refused_on_its_redelivery(env: Stack) -> None:
    subscription, _ = env.marketplace.purchase("contoso-seats", "team", 5, activated=True)
    change = env.marketplace.change_quantity(subscription["id"], 8, deliver=False)
    # Our first answer was a 5xx; the marketplace went ahead (here: acknowledged, as an auto-accept would).
    env.marketplace.patch_operation(subscription["id"], str(change["id"]), "Success")
    # Judged on this body alone the change would be refused (99 seats, outside team's 1..50).
    payload = {**env.marketplace.webhook_payload(str(change["id"])), "quantity": 99}

    with capture_logs() as logs:
        status, _ = post(payload)

    assert status == 200
    [message] = env.queue.sent
    assert message.message_id == change["id"]
    record = env.store.delivery(subscription["id"], str(change["id"]))
    assert record is not None
    assert record.status is not DeliveryStatus.REJECTED
    [moot] = [line for line in logs if line["event"] == "webhook.refusal_moot"]
    assert "Succeeded" in str(moot["reason"])


def test_a_change_judged_on_a_read_that_lags_an_activation_is_not_refused(env: Stack) -> None:
    # The marketplace sends changes for Subscribed subscriptions only; right after an activation
    # its reads may still say PendingFulfillmentStart. A 4xx would reject the customer's change.
    subscription, _ = env.marketplace.purchase("contoso-seats", "team", 5, activated=False)
    change = {"id": new_id(), "subscriptionId": subscription["id"], "action": "ChangeQuantity", "quantity": 8,
              "status": "InProgress"}

    status, _ = post(change)

    assert status == 200
    [message] = env.queue.sent
    assert message.message_id == change["id"]


def test_an_unconfirmed_refusal_stays_out_of_the_history_in_api_mode(env: Stack) -> None:
    # Nothing vouches for this body (no token in `api` mode, and no such operation): it must not
    # write into a real subscription's history, whatever it claims.
    subscription, _ = env.marketplace.purchase("contoso-seats", "team", 5, activated=True)
    env.store.commit(Commit(subscription=parse_subscription(env.marketplace.get(subscription["id"])), expected=None))
    forged = {"id": new_id(), "subscriptionId": subscription["id"], "action": "ChangePlan", "planId": "no-such-plan"}

    assert post(forged)[0] == 400

    assert env.store.history(subscription["id"]) == []
    record = env.store.delivery(subscription["id"], forged["id"])
    assert record is not None
    assert record.status is DeliveryStatus.REJECTED


def test_a_confirmed_refusal_is_in_the_history(env: Stack) -> None:
    subscription, _ = env.marketplace.purchase("contoso-seats", "team", 5, activated=True)
    env.store.commit(Commit(subscription=parse_subscription(env.marketplace.get(subscription["id"])), expected=None))
    change = env.marketplace.change_quantity(subscription["id"], 8, deliver=False)
    payload = {**env.marketplace.webhook_payload(str(change["id"])), "quantity": 99}  # judged on 99: refused

    assert post(payload)[0] == 400

    [entry] = env.store.history(subscription["id"])
    assert (entry.operation_id, entry.outcome.value) == (change["id"], "rejected")


def test_a_change_still_pending_is_refused_as_judged(env: Stack) -> None:
    subscription, _ = env.marketplace.purchase("contoso-seats", "team", 5, activated=True)
    change = env.marketplace.change_quantity(subscription["id"], 8, deliver=False)
    payload = {**env.marketplace.webhook_payload(str(change["id"])), "quantity": 99}

    status, body = post(payload)

    assert status == 400
    assert "99" in body["error"]
    assert env.queue.sent == []


def test_in_jwt_mode_a_delivery_without_a_token_is_a_401(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(webhook_auth=WebhookAuth.JWT, tenant_id=new_id(), client_id=new_id(),
                        openid_metadata_url="https://127.0.0.1:9/unused")  # a missing token is refused before any fetch
    built = stack(settings)
    monkeypatch.setattr(bootstrap, "worker", lambda: built.worker)

    status, body = post(suspend_payload(built))

    assert (status, body) == (401, {"error": "unauthenticated"})
    assert built.queue.sent == []


def test_the_bearer_token_never_reaches_the_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(webhook_auth=WebhookAuth.JWT, tenant_id=new_id(), client_id=new_id(),
                        openid_metadata_url="https://127.0.0.1:9/unused")
    built = stack(settings)
    monkeypatch.setattr(bootstrap, "worker", lambda: built.worker)
    token = "not-a-jwt-" + new_id()

    with capture_logs() as logs:
        status, _ = post(suspend_payload(built), {"Authorization": f"Bearer {token}"})

    assert status == 401
    assert logs, "the refusal should be logged"
    assert token not in repr(logs)


class RecordingService:
    """Stands in for WebhookService to observe what the edge hands it."""

    def __init__(self, answer: WebhookAnswer | None = None, error: Exception | None = None) -> None:
        self.answer, self.error = answer or WebhookAnswer(200, {"status": "accepted"}), error
        self.calls: list[tuple[str | None, bytes]] = []

    def receive(self, authorization: str | None, body: bytes) -> WebhookAnswer:
        self.calls.append((authorization, body))
        if self.error is not None:
            raise self.error
        return self.answer


@pytest.mark.parametrize("name", ["Authorization", "authorization", "AUTHORIZATION"])
def test_the_authorization_header_is_found_whatever_its_case(name: str) -> None:
    service = RecordingService()

    http.webhook(webhook_request(b"{}", {name: "Bearer abc"}), service)  # type: ignore[arg-type]

    assert service.calls == [("Bearer abc", b"{}")]


def test_a_crash_in_the_service_answers_500_never_4xx() -> None:
    service = RecordingService(error=KeyError("secret-looking detail"))

    with capture_logs() as logs:
        status, body = answer(http.webhook(webhook_request(b"{}"), service))  # type: ignore[arg-type]

    assert (status, body) == (500, {"error": "internal error, retry"})
    assert "secret-looking detail" not in repr(logs)


def test_a_minimal_change_quantity_body_is_judged_on_its_operations_target(env: Stack) -> None:
    subscription, _ = env.marketplace.purchase("contoso-seats", "team", 5, activated=True)
    operation = env.marketplace.change_quantity(subscription["id"], 8, deliver=False)
    minimal = {"id": operation["id"], "activityId": operation["activityId"], "subscriptionId": subscription["id"],
               "timeStamp": operation["timeStamp"], "action": "ChangeQuantity"}

    assert post(minimal) == (200, {"status": "accepted"})
    assert [m.message_id for m in env.queue.sent] == [operation["id"]]


@pytest.mark.parametrize("garbled", [{"timeStamp": "yesterday"}, {"status": "Pending"},
                                     {"subscription": {"saasSubscriptionStatus": "Active"}}], ids=str)
def test_a_change_with_an_unreadable_advisory_field_is_accepted_not_rejected(
    env: Stack, garbled: dict[str, Any]
) -> None:
    # A 400 here would reject the customer's seat change over a field the operation makes redundant.
    subscription, _ = env.marketplace.purchase("contoso-seats", "team", 5, activated=True)
    operation = env.marketplace.change_quantity(subscription["id"], 8, deliver=False)

    assert post(env.marketplace.webhook_payload(str(operation["id"])) | garbled) == (200, {"status": "accepted"})
    assert [m.message_id for m in env.queue.sent] == [operation["id"]]


def test_a_change_for_a_subscription_the_marketplace_does_not_know_is_rejected(env: Stack) -> None:
    payload = {"id": new_id(), "subscriptionId": new_id(), "action": "ChangePlan", "planId": "business"}

    status, body = post(payload)

    assert status == 400
    assert "no such subscription" in body["error"]
    assert env.queue.sent == []


def test_a_forbidden_api_while_judging_a_change_is_a_503_not_a_rejection(env: Stack) -> None:
    subscription, _ = env.marketplace.purchase("contoso-seats", "team", 5, activated=True)
    operation = env.marketplace.change_quantity(subscription["id"], 8, deliver=False)
    env.marketplace.inject(status=403, times=5)

    status, _ = post(env.marketplace.webhook_payload(str(operation["id"])))

    assert status == 503
    assert env.queue.sent == []


def test_a_redelivered_change_we_accepted_is_answered_the_same_after_the_state_moved_on(env: Stack) -> None:
    # Found by the soak: a late redelivery of an accepted seat change, while its queue message
    # still waited, was judged again against a newer plan whose minimum it no longer met.
    subscription, _ = env.marketplace.purchase("contoso-seats", "business", 5, activated=True)  # 5..50 seats
    sid = subscription["id"]
    change = env.marketplace.change_quantity(sid, 6, deliver=False)
    payload = env.marketplace.webhook_payload(str(change["id"]))
    assert post(payload) == (200, {"status": "accepted"})
    env.marketplace.patch_operation(sid, str(change["id"]), "Success")
    seats = env.marketplace.change_quantity(sid, 12, deliver=False)
    env.marketplace.patch_operation(sid, str(seats["id"]), "Success")
    plan = env.marketplace.change_plan(sid, "enterprise", deliver=False)  # enterprise: 10.. seats
    env.marketplace.patch_operation(sid, str(plan["id"]), "Success")
    env.store.commit(Commit(subscription=parse_subscription(env.marketplace.get(sid)), expected=env.store.load(sid)))

    assert post(payload) == (200, {"status": "accepted"})
    assert [m.message_id for m in env.queue.sent] == [payload["id"]]  # the duplicate dropped by the queue


@pytest.mark.parametrize("quantity", [8, 90], ids=["accepted", "refused"])
def test_a_redelivered_change_is_answered_from_its_record_without_judging_it_again(env: Stack, quantity: int) -> None:
    # The marketplace redelivers when our first answer was slow: asking a slow API again would
    # risk the window once more (here the API is down, so a second judgement would be a 503).
    subscription, _ = env.marketplace.purchase("contoso-seats", "team", 5, activated=True)
    change = env.marketplace.change_quantity(subscription["id"], 8, deliver=False)
    # The sandbox refuses a change past the plan's seats itself: that delivery is written by hand.
    payload = {**env.marketplace.webhook_payload(str(change["id"])), "quantity": quantity}
    if quantity != 8:
        payload["id"] = new_id()
    first = post(payload)
    env.marketplace.inject(status=503, times=50)

    assert post(payload) == first
    assert first[0] == (200 if quantity == 8 else 400)
    assert env.marketplace.faults.pending == 50  # not one API call


def test_a_redelivered_change_whose_processing_failed_is_not_refused_after_the_fact(env: Stack) -> None:
    subscription, _ = env.marketplace.purchase("contoso-seats", "team", 5, activated=True)
    change = env.marketplace.change_quantity(subscription["id"], 8, deliver=False)
    payload = env.marketplace.webhook_payload(str(change["id"]))
    assert post(payload) == (200, {"status": "accepted"})
    accepted = env.store.delivery(subscription["id"], str(change["id"]))
    assert accepted is not None
    env.store.update_delivery(replace(accepted, status=DeliveryStatus.FAILED, outcome="failed", reason="a bug"))
    env.marketplace.inject(status=404, times=50)  # judged again, the change would be refused: no such subscription

    assert post(payload)[0] == 200
    again = env.store.delivery(subscription["id"], str(change["id"]))
    assert again is not None
    assert again.status is DeliveryStatus.FAILED  # still in the failed list, replayable


def test_an_accepted_change_is_recorded_once_already_accepted(env: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    subscription, _ = env.marketplace.purchase("contoso-seats", "team", 5, activated=True)
    sid = subscription["id"]
    env.store.commit(Commit(subscription=parse_subscription(env.marketplace.get(sid)), expected=None))
    change = env.marketplace.change_quantity(sid, 6, deliver=False)
    updates: list[object] = []
    monkeypatch.setattr(env.store, "update_delivery", updates.append)

    assert post(env.marketplace.webhook_payload(str(change["id"]))) == (200, {"status": "accepted"})

    stored = env.store.delivery(sid, str(change["id"]))
    assert stored is not None
    assert stored.outcome == "accepted"
    assert updates == []


def test_a_change_recorded_by_a_delivery_that_stopped_early_is_judged_and_remembered(env: Stack) -> None:
    subscription, _ = env.marketplace.purchase("contoso-seats", "team", 5, activated=True)
    sid = subscription["id"]
    change = env.marketplace.change_quantity(sid, 6, deliver=False)
    payload = env.marketplace.webhook_payload(str(change["id"]))
    assert post(payload) == (200, {"status": "accepted"})
    first = env.store.delivery(sid, str(change["id"]))
    assert first is not None
    # As an earlier delivery would have left it had it stopped between its record and its answer.
    env.store.update_delivery(replace(first, outcome=""))

    assert post(payload) == (200, {"status": "accepted"})

    stored = env.store.delivery(sid, str(change["id"]))
    assert stored is not None
    assert stored.outcome == "accepted"


def test_a_change_is_judged_on_the_truth_when_its_snapshot_shows_our_state_behind(env: Stack) -> None:
    # Found by the soak: our state still had the old plan (its plan change was auto-accepted
    # while our queue was behind), and a seat change past the new plan's maximum but inside
    # the old one's was accepted.
    subscription, _ = env.marketplace.purchase("contoso-seats", "enterprise", 20, activated=True)  # 10..1000 seats
    sid = subscription["id"]
    env.store.commit(Commit(subscription=parse_subscription(env.marketplace.get(sid)), expected=None))
    plan = env.marketplace.change_plan(sid, "business", deliver=False)  # 5..50 seats
    env.marketplace.patch_operation(sid, str(plan["id"]), "Success")  # ours still says enterprise
    seats = env.marketplace.change_quantity(sid, 30, deliver=False)
    payload = {**env.marketplace.webhook_payload(str(seats["id"])), "id": new_id(), "quantity": 60}

    status, body = post(payload)

    assert status == 400
    assert "business" in body["error"]
    assert env.queue.sent == []
