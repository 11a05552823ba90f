"""Rules about one subscription's JSON: what may change it, and how a change lands.

Pure functions over the subscription dict (no lock, no I/O); the marketplace calls
them under its lock. "Only Subscribed can be updated; only Suspended can be reinstated."
"""

from __future__ import annotations

from datetime import date, datetime

from lifecycle.sandbox import catalog
from lifecycle.sandbox.clock import add_term, ms_datetime, term_date
from lifecycle.sandbox.errors import bad_request
from lifecycle.sandbox.records import Json

ALLOWED_FROM: dict[str, frozenset[str]] = {
    "ChangePlan": frozenset({"Subscribed"}),
    "ChangeQuantity": frozenset({"Subscribed"}),
    "Renew": frozenset({"Subscribed"}),
    "Suspend": frozenset({"Subscribed"}),
    "Reinstate": frozenset({"Suspended"}),
    "Unsubscribe": frozenset({"NotStarted", "PendingFulfillmentStart", "Subscribed", "Suspended"}),
}
"""Action -> the statuses it may start from."""


def require_status(subscription: Json, action: str) -> None:
    status = subscription["saasSubscriptionStatus"]
    if status not in ALLOWED_FROM[action]:
        raise bad_request(f"{action} is not allowed while the subscription is {status}", "saasSubscriptionStatus")


def check_plan_change(subscription: Json, plan_id: object) -> str:
    """The validated target plan id, or 400."""
    require_status(subscription, "ChangePlan")
    if not isinstance(plan_id, str) or not plan_id:
        raise bad_request("planId must be a non-empty string", "planId")
    plan = catalog.find_plan(subscription["offerId"], plan_id)
    if plan is None:
        raise bad_request(f"Plan {plan_id!r} is not available for offer {subscription['offerId']!r}", "planId")
    if plan_id == subscription["planId"]:
        raise bad_request(f"The subscription is already on plan {plan_id!r}", "planId")
    problem = catalog.quantity_problem(plan, subscription.get("quantity"))
    if problem:
        raise bad_request(problem, "planId")
    return plan_id


def check_quantity_change(subscription: Json, quantity: object) -> int:
    """The validated target quantity, or 400: within the current plan's seats, and new."""
    require_status(subscription, "ChangeQuantity")
    plan = catalog.find_plan(subscription["offerId"], subscription["planId"])
    if plan is None or not plan["isPricePerSeat"]:
        raise bad_request(f"Plan {subscription['planId']!r} is not priced per seat", "quantity")
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise bad_request("quantity must be an integer", "quantity")
    problem = catalog.quantity_problem(plan, quantity)
    if problem:
        raise bad_request(problem, "quantity")
    if quantity == subscription.get("quantity"):
        raise bad_request(f"The subscription already has quantity {quantity}", "quantity")
    return quantity


def start_term(subscription: Json, now: datetime) -> None:
    """Billing starts at activation: the first term's dates appear."""
    _set_term(subscription, now.date(), now)


def renew_term(subscription: Json, now: datetime) -> None:
    """The next term follows the current one; a free trial converts to paid on renewal."""
    end = subscription["term"].get("endDate")
    start = date.fromisoformat(end[:10]) if end else now.date()
    _set_term(subscription, start, now)
    subscription["isFreeTrial"] = False


def apply_operation(subscription: Json, operation: Json, now: datetime) -> str | None:
    """Land a succeeded ChangePlan/ChangeQuantity/Reinstate; why not, if it no longer fits."""
    action = operation["action"]
    status = subscription["saasSubscriptionStatus"]
    if status not in ALLOWED_FROM.get(action, frozenset()):
        return f"The subscription is {status} now; {action} can no longer apply"
    if action == "ChangePlan":
        subscription["planId"] = operation["planId"]
    elif action == "ChangeQuantity":
        subscription["quantity"] = operation["quantity"]
    elif action == "Reinstate":
        subscription["saasSubscriptionStatus"] = "Subscribed"
    touch(subscription, now)
    return None


def touch(subscription: Json, now: datetime) -> None:
    subscription["lastModified"] = ms_datetime(now)


def _set_term(subscription: Json, start: date, now: datetime) -> None:
    term = subscription["term"]
    term.update(startDate=term_date(start), endDate=term_date(add_term(start, term["termUnit"])))
    touch(subscription, now)
