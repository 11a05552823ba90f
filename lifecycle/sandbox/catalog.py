"""The sandbox's built-in catalog: the offers and plans a purchase can name.

Plans are JSON objects shaped like the entries of `listAvailablePlans`. Two offers
cover both pricing models: flat-rate plans take no quantity, per-seat plans require
one within their minimum and maximum seats (fixed once an offer is published).
"""

from __future__ import annotations

import copy
from typing import Any

Plan = dict[str, Any]


def _plan(plan_id: str, name: str, *, seats: tuple[int, int] | None = None, **extra: Any) -> Plan:
    per_seat = seats is not None
    plan: Plan = {
        "planId": plan_id,
        "displayName": name,
        "isPrivate": False,
        "description": f"{name} plan",
        "minQuantity": seats[0] if seats else None,
        "maxQuantity": seats[1] if seats else None,
        "hasFreeTrials": False,
        "isPricePerSeat": per_seat,
        "isStopSell": False,
        "market": "US",
        "planComponents": {"recurrentBillingTerms": [], "meteringDimensions": []},
    }
    plan.update(extra)
    return plan


CATALOG: dict[str, list[Plan]] = {
    "contoso-flat": [
        _plan("basic", "Basic", hasFreeTrials=True),
        _plan("standard", "Standard"),
        _plan("premium", "Premium"),
    ],
    "contoso-seats": [
        _plan("team", "Team", seats=(1, 10), hasFreeTrials=True),
        _plan("business", "Business", seats=(5, 50)),
        _plan("enterprise", "Enterprise", seats=(10, 1000)),
    ],
}
"""Offer id -> its plans. Preview purchases use the same offer id with `-preview` appended."""

PREVIEW_SUFFIX = "-preview"


def base_offer(offer_id: str) -> str:
    """The catalog offer behind an offer id (preview audiences see `<offer>-preview`)."""
    return offer_id.removesuffix(PREVIEW_SUFFIX)


def plans(offer_id: str) -> list[Plan]:
    """Copies of the offer's plans (callers may serialise or alter them freely); [] if unknown."""
    return copy.deepcopy(CATALOG.get(base_offer(offer_id), []))


def find_plan(offer_id: str, plan_id: str) -> Plan | None:
    return next((plan for plan in plans(offer_id) if plan["planId"] == plan_id), None)


def admits(plan: Plan, quantity: int) -> bool:
    """Whether a per-seat plan's seat bounds allow `quantity`."""
    low, high = plan.get("minQuantity"), plan.get("maxQuantity")
    return (low is None or quantity >= low) and (high is None or quantity <= high)


def quantity_problem(plan: Plan, quantity: int | None) -> str | None:
    """Why `quantity` does not fit the plan, or None if it does.

    Per-seat plans need a quantity within their bounds; flat-rate plans take none.
    """
    if not plan["isPricePerSeat"]:
        return None if quantity is None else f"plan {plan['planId']!r} is flat-rate and takes no quantity"
    if quantity is None:
        return f"plan {plan['planId']!r} is priced per seat and needs a quantity"
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not admits(plan, quantity):
        return (
            f"quantity {quantity!r} is outside plan {plan['planId']!r}'s seats "
            f"({plan['minQuantity']}-{plan['maxQuantity']})"
        )
    return None
