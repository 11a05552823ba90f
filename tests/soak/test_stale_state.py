"""Found by the soak: the webhook refused valid changes when our state lagged the marketplace's.

The processor runs behind the webhook (a queue, a scheduled delay, a backlog after an
outage), so the state the webhook's policy reads may miss a change the marketplace has
already made. A seat count valid on the new plan was then refused against the old one,
and on ChangePlan/ChangeQuantity a 4xx is final: the customer's change was rejected.
A refusal must hold against the marketplace's truth, not only against our copy.
"""

from __future__ import annotations

from lifecycle.parsing import parse_subscription, parse_webhook
from lifecycle.sandbox.control import _forced
from lifecycle.sandbox.marketplace import Marketplace
from lifecycle.services.policy import ChangePolicy
from tests.fakes.marketplace import InProcessMarketplaceApi


def test_a_seat_change_valid_on_a_plan_we_have_not_processed_yet_is_accepted() -> None:
    market = Marketplace(auto_accept_seconds=None)
    subscription, _ = market.purchase("contoso-seats", "team", 5, activated=True)
    sid = subscription["id"]
    stale = parse_subscription(market.get(sid))  # ours, before the plan change reaches the processor
    plan = market.change_plan(sid, "business", deliver=False)
    market.patch_operation(sid, plan["id"], "Success")  # the truth is on business now (5..50 seats)
    change = market.change_quantity(sid, 30, deliver=False)

    verdict = ChangePolicy(InProcessMarketplaceApi(market)).check(
        parse_webhook(market.webhook_payload(change["id"])), stale
    )

    assert verdict.accepted, verdict.reason


def test_a_seat_change_the_truth_also_refuses_is_still_refused() -> None:
    market = Marketplace(auto_accept_seconds=None)
    subscription, _ = market.purchase("contoso-seats", "team", 5, activated=True)
    sid = subscription["id"]
    ours = parse_subscription(market.get(sid))  # current: team allows 1..10 seats
    change = _forced(market, sid, "change-quantity", None, 30, deliver=False)  # past the marketplace's checks

    verdict = ChangePolicy(InProcessMarketplaceApi(market)).check(
        parse_webhook(market.webhook_payload(change["id"])), ours
    )

    assert not verdict.accepted
    assert "outside plan 'team'" in verdict.reason
