"""Purchases follow the catalog: plans of the offer, seats only and always for per-seat plans."""

from __future__ import annotations

import pytest

from lifecycle.sandbox import Marketplace, SandboxError
from lifecycle.sandbox.catalog import CATALOG, find_plan, plans


def test_catalog_has_a_flat_rate_and_a_per_seat_offer() -> None:
    kinds = {offer: {plan["isPricePerSeat"] for plan in offer_plans} for offer, offer_plans in CATALOG.items()}
    assert kinds["contoso-flat"] == {False}
    assert kinds["contoso-seats"] == {True}


def test_plans_carry_the_list_available_plans_fields() -> None:
    plan = find_plan("contoso-seats", "business")
    assert plan is not None
    for name in ("planId", "displayName", "isPrivate", "minQuantity", "maxQuantity", "hasFreeTrials",
                 "isPricePerSeat", "isStopSell"):
        assert name in plan
    assert (plan["minQuantity"], plan["maxQuantity"]) == (5, 50)


def test_preview_offer_sees_the_same_plans() -> None:
    assert plans("contoso-flat-preview") == plans("contoso-flat")


def test_flat_rate_purchase_has_no_quantity() -> None:
    subscription, _ = Marketplace().purchase("contoso-flat", "standard")
    assert "quantity" not in subscription
    assert subscription["saasSubscriptionStatus"] == "PendingFulfillmentStart"


def test_flat_rate_purchase_refuses_a_quantity() -> None:
    with pytest.raises(SandboxError) as refused:
        Marketplace().purchase("contoso-flat", "standard", 3)
    assert refused.value.status == 400


def test_per_seat_purchase_needs_a_quantity() -> None:
    with pytest.raises(SandboxError):
        Marketplace().purchase("contoso-seats", "team")


@pytest.mark.parametrize(("plan", "quantity"), [("team", 0), ("team", 11), ("business", 4), ("enterprise", 1001)])
def test_per_seat_purchase_refuses_seats_outside_the_plan(plan: str, quantity: int) -> None:
    with pytest.raises(SandboxError):
        Marketplace().purchase("contoso-seats", plan, quantity)


@pytest.mark.parametrize(("plan", "quantity"), [("team", 1), ("team", 10), ("business", 5), ("enterprise", 1000)])
def test_per_seat_purchase_accepts_the_bounds(plan: str, quantity: int) -> None:
    subscription, _ = Marketplace().purchase("contoso-seats", plan, quantity)
    assert subscription["quantity"] == quantity


def test_unknown_plan_or_offer_is_refused() -> None:
    market = Marketplace()
    with pytest.raises(SandboxError):
        market.purchase("contoso-flat", "team")
    with pytest.raises(SandboxError):
        market.purchase("fabrikam", "basic")


def test_free_trial_only_on_plans_that_offer_one() -> None:
    market = Marketplace()
    trial, _ = market.purchase("contoso-flat", "basic", free_trial=True)
    assert trial["isFreeTrial"] is True
    with pytest.raises(SandboxError):
        market.purchase("contoso-flat", "premium", free_trial=True)


def test_csp_purchase_has_a_partner_purchaser_and_read_only_operations() -> None:
    subscription, _ = Marketplace().purchase("contoso-seats", "team", 2, csp=True, beneficiary_tenant="customer-t")
    assert subscription["beneficiary"]["tenantId"] == "customer-t"
    assert subscription["purchaser"]["tenantId"] != "customer-t"
    assert subscription["allowedCustomerOperations"] == ["Read"]
    assert subscription["sandboxType"] == "Csp"
