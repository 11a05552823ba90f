"""The marketplace core: activation, paging, changes, operations and the 10-second rule.

Time is a ManualClock: deadlines pass when a test says so, never by sleeping.
"""

from __future__ import annotations

import re

import pytest

from lifecycle.sandbox import Decider, ManualClock, Marketplace, SandboxError

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def market(clock: ManualClock) -> Marketplace:
    return Marketplace(clock=clock, auto_accept_seconds=10.0)


def subscribed(market: Marketplace, offer: str = "contoso-seats", plan: str = "team", quantity: int | None = 3) -> str:
    subscription, _ = market.purchase(offer, plan, quantity if offer == "contoso-seats" else None, activated=True)
    return str(subscription["id"])


def status_of(market: Marketplace, subscription_id: str) -> str:
    return str(market.get(subscription_id)["saasSubscriptionStatus"])


def refusal(call: object, *args: object) -> int:
    with pytest.raises(SandboxError) as refused:
        call(*args)  # type: ignore[operator]
    return refused.value.status


# -- purchase, resolve, activate -------------------------------------------------------


def test_landing_page_token_needs_url_encoding(market: Marketplace) -> None:
    _, token = market.purchase("contoso-flat", "basic")
    assert {"+", "/", "="} <= set(token)


def test_resolve_names_the_purchase(market: Marketplace) -> None:
    subscription, token = market.purchase("contoso-seats", "business", 7)
    resolved = market.resolve(token)
    assert (resolved["id"], resolved["planId"], resolved["quantity"]) == (subscription["id"], "business", 7)
    assert resolved["subscription"]["saasSubscriptionStatus"] == "PendingFulfillmentStart"


def test_resolve_refuses_unknown_and_expired_tokens(market: Marketplace, clock: ManualClock) -> None:
    _, token = market.purchase("contoso-flat", "basic")
    assert refusal(market.resolve, token.replace("+", "%2B")) == 400
    clock.advance(24 * 3600 + 1)
    assert refusal(market.resolve, token) == 400


def test_activate_subscribes_and_starts_the_term(market: Marketplace) -> None:
    subscription, _ = market.purchase("contoso-flat", "basic", term_unit="P1Y")
    assert "startDate" not in subscription["term"]
    market.activate(subscription["id"], "basic")
    term = market.get(subscription["id"])["term"]
    assert status_of(market, subscription["id"]) == "Subscribed"
    assert term["endDate"][:4] == str(int(term["startDate"][:4]) + 1)


def test_activate_is_idempotent_on_the_same_plan_only(market: Marketplace) -> None:
    subscription_id = subscribed(market, "contoso-flat", "basic")
    market.activate(subscription_id, "basic")
    assert refusal(market.activate, subscription_id, "premium") == 400


def test_activate_refuses_a_suspended_subscription(market: Marketplace) -> None:
    subscription_id = subscribed(market)
    market.suspend(subscription_id)
    assert refusal(market.activate, subscription_id) == 400


def test_activation_can_lag_like_microsofts(clock: ManualClock) -> None:
    market = Marketplace(clock=clock, activation_delay_seconds=30)
    subscription, _ = market.purchase("contoso-flat", "basic")
    market.activate(subscription["id"])
    assert status_of(market, subscription["id"]) == "PendingFulfillmentStart"
    clock.advance(30)
    assert status_of(market, subscription["id"]) == "Subscribed"


def test_unknown_subscription_is_404(market: Marketplace) -> None:
    assert refusal(market.get, "no-such-id") == 404


# -- paging ------------------------------------------------------------------------------


@pytest.mark.parametrize(("page_size", "total"), [(7, 23), (7, 7), (1, 3), (100, 5)])
def test_pages_cover_every_subscription_once(page_size: int, total: int) -> None:
    market = Marketplace(page_size=page_size)
    bought = [market.purchase("contoso-flat", "basic")[0]["id"] for _ in range(total)]
    seen: list[str] = []
    pages = 0
    continuation: str | None = None
    while True:
        page, continuation = market.list_page(continuation)
        pages += 1
        assert len(page) <= page_size
        seen += [item["id"] for item in page]
        if continuation is None:
            break
    assert seen == bought
    assert pages == -(-total // page_size)


def test_foreign_continuation_token_is_refused(market: Marketplace) -> None:
    assert refusal(market.list_page, "not-a-token") == 400


# -- changes and operations ----------------------------------------------------------


def test_change_waits_in_progress_without_touching_the_truth(market: Marketplace) -> None:
    subscription_id = subscribed(market)
    operation = market.change_quantity(subscription_id, 5)
    assert operation["status"] == "InProgress"
    assert operation["action"] == "ChangeQuantity"
    assert TIMESTAMP.match(operation["timeStamp"])
    assert market.get(subscription_id)["quantity"] == 3
    assert [op["id"] for op in market.operations(subscription_id)] == [operation["id"]]


def test_two_pending_changes_apply_independently(market: Marketplace) -> None:
    subscription_id = subscribed(market, quantity=6)
    plan_change = market.change_plan(subscription_id, "business")
    seat_change = market.change_quantity(subscription_id, 7)
    assert len(market.operations(subscription_id)) == 2
    market.patch_operation(subscription_id, seat_change["id"], "Success")
    market.patch_operation(subscription_id, plan_change["id"], "Success")
    truth = market.get(subscription_id)
    assert (truth["planId"], truth["quantity"]) == ("business", 7)


def test_patch_success_then_patch_again_is_409(market: Marketplace) -> None:
    subscription_id = subscribed(market, "contoso-flat", "basic")
    operation = market.change_plan(subscription_id, "premium")
    market.patch_operation(subscription_id, operation["id"], "Success")
    assert market.get(subscription_id)["planId"] == "premium"
    assert market.get_operation(subscription_id, operation["id"])["status"] == "Succeeded"
    assert refusal(market.patch_operation, subscription_id, operation["id"], "Failure") == 409
    assert market.operations(subscription_id) == []


def test_patch_failure_leaves_the_truth(market: Marketplace) -> None:
    subscription_id = subscribed(market, "contoso-flat", "basic")
    operation = market.change_plan(subscription_id, "premium")
    market.patch_operation(subscription_id, operation["id"], "Failure")
    assert market.get(subscription_id)["planId"] == "basic"
    assert market.get_operation(subscription_id, operation["id"])["status"] == "Failed"
    assert market.record(operation["id"]).decided_by is Decider.PUBLISHER_ACK


@pytest.mark.parametrize("action", ["suspend", "renew", "unsubscribe"])
def test_patch_on_notify_only_operations_is_400(market: Marketplace, action: str) -> None:
    subscription_id = subscribed(market)
    operation = getattr(market, action)(subscription_id)
    assert operation["status"] == "Succeeded"
    assert refusal(market.patch_operation, subscription_id, operation["id"], "Success") == 400


def test_patch_needs_success_or_failure(market: Marketplace) -> None:
    subscription_id = subscribed(market)
    operation = market.change_quantity(subscription_id, 4)
    assert refusal(market.patch_operation, subscription_id, operation["id"], "Done") == 400
    assert [p.answer for p in market.record(operation["id"]).patches] == [400]


def test_unacknowledged_change_is_auto_accepted(market: Marketplace, clock: ManualClock) -> None:
    subscription_id = subscribed(market)
    operation = market.change_quantity(subscription_id, 8)
    clock.advance(9.9)
    assert market.get_operation(subscription_id, operation["id"])["status"] == "InProgress"
    clock.advance(0.2)
    assert market.get_operation(subscription_id, operation["id"])["status"] == "Succeeded"
    assert market.get(subscription_id)["quantity"] == 8
    assert market.record(operation["id"]).decided_by is Decider.AUTO_ACCEPT


def test_late_failure_after_auto_accept_is_409(market: Marketplace, clock: ManualClock) -> None:
    subscription_id = subscribed(market)
    operation = market.change_quantity(subscription_id, 8)
    clock.advance(11)
    assert refusal(market.patch_operation, subscription_id, operation["id"], "Failure") == 409
    assert market.get(subscription_id)["quantity"] == 8


@pytest.mark.parametrize(
    ("plan", "quantity", "change"),
    [
        ("team", 3, ("plan", "enterprise")),  # 3 seats are below enterprise's 10
        ("team", 3, ("plan", "gold")),  # not in the catalog
        ("team", 3, ("quantity", 11)),  # above team's 10
        ("team", 3, ("quantity", 3)),  # no change
    ],
)
def test_invalid_changes_are_400(market: Marketplace, plan: str, quantity: int, change: tuple[str, object]) -> None:
    subscription_id = subscribed(market, "contoso-seats", plan, quantity)
    call = market.change_plan if change[0] == "plan" else market.change_quantity
    assert refusal(call, subscription_id, change[1]) == 400


def test_flat_rate_has_no_quantity_to_change(market: Marketplace) -> None:
    assert refusal(market.change_quantity, subscribed(market, "contoso-flat", "basic"), 2) == 400


@pytest.mark.parametrize("setup", ["pending", "suspended", "unsubscribed"])
def test_only_subscribed_can_change(market: Marketplace, setup: str) -> None:
    if setup == "pending":
        subscription_id = market.purchase("contoso-seats", "team", 3)[0]["id"]
    else:
        subscription_id = subscribed(market)
        getattr(market, "suspend" if setup == "suspended" else "unsubscribe")(subscription_id)
    assert refusal(market.change_quantity, subscription_id, 4) == 400


# -- marketplace-initiated actions ---------------------------------------------------


def test_suspend_applies_at_once(market: Marketplace) -> None:
    subscription_id = subscribed(market)
    market.suspend(subscription_id)
    assert status_of(market, subscription_id) == "Suspended"


def test_reinstate_waits_for_the_ack(market: Marketplace) -> None:
    subscription_id = subscribed(market)
    market.suspend(subscription_id)
    operation = market.reinstate(subscription_id)
    assert status_of(market, subscription_id) == "Suspended"
    market.patch_operation(subscription_id, operation["id"], "Success")
    assert status_of(market, subscription_id) == "Subscribed"
    assert refusal(market.patch_operation, subscription_id, operation["id"], "Success") == 409


def test_reinstate_is_auto_accepted_too(market: Marketplace, clock: ManualClock) -> None:
    subscription_id = subscribed(market)
    market.suspend(subscription_id)
    market.reinstate(subscription_id)
    clock.advance(10)
    assert status_of(market, subscription_id) == "Subscribed"


def test_only_suspended_can_be_reinstated(market: Marketplace) -> None:
    assert refusal(market.reinstate, subscribed(market)) == 400


def test_renew_starts_the_next_term_and_ends_a_free_trial(market: Marketplace) -> None:
    subscription, _ = market.purchase("contoso-flat", "basic", activated=True, free_trial=True)
    before = subscription["term"]
    market.renew(subscription["id"])
    after = market.get(subscription["id"])
    assert after["term"]["startDate"] == before["endDate"]
    assert after["isFreeTrial"] is False


def test_unsubscribe_is_final(market: Marketplace) -> None:
    subscription_id = subscribed(market)
    market.unsubscribe(subscription_id)
    assert status_of(market, subscription_id) == "Unsubscribed"
    assert refusal(market.unsubscribe, subscription_id) == 400
    assert refusal(market.reinstate, subscription_id) == 400


def test_delete_unsubscribes_a_pending_purchase(market: Marketplace) -> None:
    subscription, _ = market.purchase("contoso-flat", "basic")
    operation = market.delete(subscription["id"])
    assert operation["action"] == "Unsubscribe"
    assert status_of(market, subscription["id"]) == "Unsubscribed"


def test_changes_go_to_the_notifier_unless_told_not_to(market: Marketplace) -> None:
    notified: list[str] = []
    market.notifier = notified.append
    subscription_id = subscribed(market)
    sent = market.suspend(subscription_id)
    market.reinstate(subscription_id, deliver=False)
    assert notified == [sent["id"]]


def test_webhook_payload_shows_the_subscription_before_the_change(market: Marketplace) -> None:
    subscription_id = subscribed(market)
    operation = market.change_quantity(subscription_id, 9, source="Partner")
    payload = market.webhook_payload(operation["id"])
    assert payload["quantity"] == 9
    assert payload["subscription"]["quantity"] == 3
    assert (payload["status"], payload["operationRequestSource"]) == ("InProgress", "Partner")
    suspended = market.webhook_payload(market.suspend(subscription_id)["id"])
    assert suspended["status"] == "Succeeded"
    assert suspended["subscription"]["saasSubscriptionStatus"] == "Subscribed"
