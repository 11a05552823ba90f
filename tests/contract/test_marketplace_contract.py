"""The MarketplaceApi contract: identical assertions against the in-process fake and HTTP to the sandbox.

`in-process` is InProcessMarketplaceApi on a bare `Marketplace`; `http` is
HttpMarketplaceApi with MSAL tokens, talking to a fresh `Sandbox` over loopback. Both
sides share the marketplace core, so whatever differs between them is the adapter:
URL handling, status mapping, parsing, paging, retries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import quote

import pytest

from lifecycle.domain.fingerprint import Listed, Unreadable, fingerprint
from lifecycle.domain.model import OperationStatus, Status
from lifecycle.errors import (
    MarketplaceBadRequest,
    MarketplaceConflict,
    MarketplaceForbidden,
    MarketplaceNotFound,
    MarketplaceUnavailable,
)
from lifecycle.marketplace import HttpMarketplaceApi, MsalTokenProvider, RetryPolicy
from lifecycle.ports import MarketplaceApi
from lifecycle.sandbox.marketplace import Marketplace
from lifecycle.sandbox.server import Sandbox
from lifecycle.settings import Settings
from tests.fakes.marketplace import InProcessMarketplaceApi

ATTEMPTS = 3
UNKNOWN = "00000000-0000-0000-0000-00000000dead"


@dataclass(frozen=True)
class Side:
    """One implementation of the port and the marketplace core behind it."""

    api: MarketplaceApi
    marketplace: Marketplace

    def active(self, offer: str = "contoso-seats", plan: str = "team", quantity: int | None = 3) -> str:
        subscription, _ = self.marketplace.purchase(offer, plan, quantity, activated=True)
        return str(subscription["id"])


@pytest.fixture(params=["in-process", "http"])
def side(request: pytest.FixtureRequest) -> Iterator[Side]:
    if request.param == "in-process":
        marketplace = Marketplace(page_size=7, auto_accept_seconds=None)
        yield Side(InProcessMarketplaceApi(marketplace, attempts=ATTEMPTS), marketplace)
        return
    with Sandbox(page_size=7, auto_accept_seconds=None) as sandbox:
        settings = Settings.from_env(sandbox.settings_env())
        retry = RetryPolicy.no_wait(max_attempts=ATTEMPTS)
        with HttpMarketplaceApi(settings.marketplace_api_url, MsalTokenProvider(settings), retry=retry) as api:
            yield Side(api, sandbox.marketplace)


def test_resolve_takes_the_landing_page_token_as_it_appears_in_the_url(side: Side) -> None:
    subscription, token = side.marketplace.purchase("contoso-seats", "business", 6)
    resolved = side.api.resolve(quote(token, safe=""))
    assert (resolved.subscription_id, resolved.offer_id, resolved.plan_id) == (subscription["id"], "contoso-seats",
                                                                               "business")
    assert resolved.quantity == 6
    assert resolved.subscription.status is Status.PENDING_FULFILLMENT_START


def test_resolve_refuses_an_unknown_token(side: Side) -> None:
    with pytest.raises(MarketplaceBadRequest):
        side.api.resolve("bm90LWEtdG9rZW4%3D")


def test_activate_makes_a_purchase_subscribed(side: Side) -> None:
    subscription, _ = side.marketplace.purchase("contoso-flat", "basic")
    side.api.activate(subscription["id"], "basic")
    assert side.api.get_subscription(subscription["id"]).status is Status.SUBSCRIBED


def test_activate_refuses_another_plan_and_a_cancelled_subscription(side: Side) -> None:
    subscription, _ = side.marketplace.purchase("contoso-flat", "basic")
    with pytest.raises(MarketplaceBadRequest):
        side.api.activate(subscription["id"], "premium")
    side.marketplace.unsubscribe(subscription["id"])
    with pytest.raises(MarketplaceBadRequest):
        side.api.activate(subscription["id"], "basic")


def test_get_subscription_returns_the_truth(side: Side) -> None:
    subscription_id = side.active("contoso-seats", "business", 12)
    fetched = side.api.get_subscription(subscription_id)
    assert (fetched.id, fetched.offer_id, fetched.plan_id, fetched.quantity) == (subscription_id, "contoso-seats",
                                                                                 "business", 12)
    assert fetched.beneficiary_tenant_id
    assert fetched.term.end is not None


def test_unknown_ids_are_not_found_everywhere(side: Side) -> None:
    subscription_id = side.active()
    calls: list[Callable[[], object]] = [
        lambda: side.api.get_subscription(UNKNOWN),
        lambda: side.api.list_available_plans(UNKNOWN),
        lambda: side.api.list_operations(UNKNOWN),
        lambda: side.api.change_plan(UNKNOWN, "business"),
        lambda: side.api.delete_subscription(UNKNOWN),
        lambda: side.api.get_operation(subscription_id, UNKNOWN),
        lambda: side.api.update_operation(subscription_id, UNKNOWN, success=True),
    ]
    for call in calls:
        with pytest.raises(MarketplaceNotFound):
            call()


def test_listing_pages_through_every_subscription(side: Side) -> None:
    ids = {side.active("contoso-flat", "basic", None) for _ in range(23)}
    pages = list(side.api.list_subscriptions())
    assert [len(page) for page in pages] == [7, 7, 7, 2]
    assert {s.id for page in pages for s in page} == ids


def test_listed_items_are_fingerprinted_as_the_subscription_they_parse_into(side: Side) -> None:
    pending, _ = side.marketplace.purchase("contoso-seats", "team", 2)
    suspended = side.active()
    side.marketplace.suspend(suspended, deliver=False)
    ids = {side.active(), side.active("contoso-flat", "basic", None), str(pending["id"]), suspended}
    listed = [item for page in side.api.list_subscriptions() for item in page]
    assert {item.id for item in listed} == ids
    for item in listed:
        assert isinstance(item, Listed)
        whole = side.api.get_subscription(item.id)
        assert item.parse() == whole
        assert (item.status, item.fingerprint) == (whole.status, fingerprint(whole))


def test_an_item_the_list_spells_oddly_comes_unreadable_and_the_page_stays_readable(side: Side) -> None:
    odd, fine = side.active(), side.active()
    side.marketplace._subscriptions[odd]["saasSubscriptionStatus"] = "Migrating"  # a status this code lacks
    items = {item.id: item for page in side.api.list_subscriptions() for item in page}
    assert items[odd] == Unreadable(odd, "saasSubscriptionStatus 'Migrating' is not a known status")
    assert isinstance(items[fine], Listed)


def test_listing_nothing_yields_no_pages(side: Side) -> None:
    assert list(side.api.list_subscriptions()) == []


def test_available_plans_are_the_offers_plans(side: Side) -> None:
    plans = side.api.list_available_plans(side.active())
    assert [(p.plan_id, p.min_quantity, p.max_quantity) for p in plans] == [
        ("team", 1, 10), ("business", 5, 50), ("enterprise", 10, 1000)]


def test_a_plan_change_waits_in_progress_and_success_applies_it(side: Side) -> None:
    subscription_id = side.active("contoso-flat", "basic", None)
    operation_id = side.api.change_plan(subscription_id, "standard")
    operation = side.api.get_operation(subscription_id, operation_id)
    assert (operation.action, operation.status, operation.plan_id) == ("ChangePlan", OperationStatus.IN_PROGRESS,
                                                                       "standard")
    assert [op.id for op in side.api.list_operations(subscription_id)] == [operation_id]
    side.api.update_operation(subscription_id, operation_id, success=True)
    assert side.api.get_operation(subscription_id, operation_id).status is OperationStatus.SUCCEEDED
    assert side.api.get_subscription(subscription_id).plan_id == "standard"
    assert side.api.list_operations(subscription_id) == []


def test_a_quantity_change_answered_failure_changes_nothing(side: Side) -> None:
    subscription_id = side.active("contoso-seats", "team", 3)
    operation_id = side.api.change_quantity(subscription_id, 9)
    side.api.update_operation(subscription_id, operation_id, success=False)
    assert side.api.get_operation(subscription_id, operation_id).status is OperationStatus.FAILED
    assert side.api.get_subscription(subscription_id).quantity == 3


def test_invalid_changes_are_bad_requests(side: Side) -> None:
    seats, flat = side.active("contoso-seats", "team", 3), side.active("contoso-flat", "basic", None)
    suspended = side.active("contoso-seats", "team", 3)
    side.marketplace.suspend(suspended)
    calls: list[Callable[[], object]] = [
        lambda: side.api.change_plan(seats, "no-such-plan"),
        lambda: side.api.change_plan(seats, "team"),  # already on it
        lambda: side.api.change_quantity(seats, 11),  # above the plan's maximum
        lambda: side.api.change_quantity(flat, 2),  # flat-rate takes no quantity
        lambda: side.api.change_quantity(suspended, 4),  # only Subscribed can be updated
    ]
    for call in calls:
        with pytest.raises(MarketplaceBadRequest):
            call()


def test_delete_unsubscribes_at_once(side: Side) -> None:
    subscription_id = side.active()
    operation_id = side.api.delete_subscription(subscription_id)
    operation = side.api.get_operation(subscription_id, operation_id)
    assert (operation.action, operation.status) == ("Unsubscribe", OperationStatus.SUCCEEDED)
    assert side.api.get_subscription(subscription_id).status is Status.UNSUBSCRIBED


def test_patching_a_final_operation_is_a_conflict(side: Side) -> None:
    subscription_id = side.active()
    operation_id = side.api.change_quantity(subscription_id, 5)
    side.api.update_operation(subscription_id, operation_id, success=True)
    with pytest.raises(MarketplaceConflict):
        side.api.update_operation(subscription_id, operation_id, success=False)


def test_patching_a_notify_only_operation_is_a_bad_request(side: Side) -> None:
    subscription_id = side.active()
    operation = side.marketplace.suspend(subscription_id)
    with pytest.raises(MarketplaceBadRequest):
        side.api.update_operation(subscription_id, str(operation["id"]), success=True)


def test_a_passing_fault_is_absorbed_by_retries(side: Side) -> None:
    subscription_id = side.active()
    side.marketplace.inject(status=503, times=ATTEMPTS - 1)
    assert side.api.get_subscription(subscription_id).id == subscription_id


def test_a_lasting_fault_is_unavailable_with_its_status(side: Side) -> None:
    subscription_id = side.active()
    side.marketplace.inject(status=429, retry_after=0, times=ATTEMPTS)
    with pytest.raises(MarketplaceUnavailable) as raised:
        side.api.list_operations(subscription_id)
    assert raised.value.status == 429


def test_an_injected_403_is_forbidden_and_not_retried(side: Side) -> None:
    subscription_id = side.active()
    side.marketplace.inject(status=403, times=1, path="/operations")
    with pytest.raises(MarketplaceForbidden, match="Technical configuration"):
        side.api.list_operations(subscription_id)
    assert side.api.list_operations(subscription_id) == []
