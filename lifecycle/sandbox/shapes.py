"""The JSON the marketplace hands out: subscriptions, operations and webhook payloads.

Built here and nowhere else, so every field name and format matches Microsoft's
samples in one place. Values are plain dicts: the sandbox *is* the JSON side.
"""

from __future__ import annotations

import copy
import secrets
import uuid
from datetime import datetime
from typing import Any

from lifecycle.sandbox.clock import ms_datetime, ms_timestamp

Json = dict[str, Any]

CUSTOMER_OPERATIONS = ["Read", "Update", "Delete"]
CSP_OPERATIONS = ["Read"]  # CSP beneficiaries cannot update or delete themselves


def new_id() -> str:
    return str(uuid.uuid4())


def party(tenant_id: str) -> Json:
    """A beneficiary or purchaser: an Entra user in `tenant_id`."""
    user = secrets.token_hex(3)
    return {
        "emailId": f"user-{user}@{tenant_id[:8]}.example.com",
        "objectId": str(uuid.uuid4()),
        "tenantId": tenant_id,
        "puid": secrets.token_hex(8).upper(),
    }


def new_subscription(
    *,
    publisher_id: str,
    offer_id: str,
    plan_id: str,
    quantity: int | None,
    beneficiary_tenant: str,
    purchaser_tenant: str,
    csp: bool,
    is_test: bool,
    free_trial: bool,
    term_unit: str,
    auto_renew: bool,
    status: str,
    now: datetime,
) -> Json:
    subscription: Json = {
        "id": str(uuid.uuid4()),
        "name": f"{offer_id} {secrets.token_hex(2)}",
        "publisherId": publisher_id,
        "offerId": offer_id,
        "planId": plan_id,
        "beneficiary": party(beneficiary_tenant),
        "purchaser": party(purchaser_tenant),
        "allowedCustomerOperations": list(CSP_OPERATIONS if csp else CUSTOMER_OPERATIONS),
        "sessionMode": "None",
        "isFreeTrial": free_trial,
        "isTest": is_test,
        "sandboxType": "Csp" if csp else "None",
        "saasSubscriptionStatus": status,
        # Dates appear once billing starts, i.e. at activation (see Marketplace.activate).
        "term": {"termUnit": term_unit, "chargeDuration": None},
        "autoRenew": auto_renew,
        "created": ms_datetime(now),
        "lastModified": ms_datetime(now),
    }
    if quantity is not None:  # flat-rate subscriptions carry no quantity at all
        subscription["quantity"] = quantity
    return subscription


def new_operation(
    subscription: Json,
    action: str,
    *,
    status: str,
    now: datetime,
    plan_id: str | None = None,
    quantity: int | None = None,
) -> Json:
    """An operation on `subscription`; plan/quantity default to the subscription's own."""
    return {
        "id": str(uuid.uuid4()),
        "activityId": str(uuid.uuid4()),
        "subscriptionId": subscription["id"],
        "offerId": subscription["offerId"],
        "publisherId": subscription["publisherId"],
        "planId": plan_id if plan_id is not None else subscription["planId"],
        "quantity": quantity if quantity is not None else subscription.get("quantity"),
        "action": action,
        "timeStamp": ms_timestamp(now),
        "status": status,
        "errorStatusCode": "",
        "errorMessage": "",
    }


WEBHOOK_STATUS = {
    "ChangePlan": "InProgress",
    "ChangeQuantity": "InProgress",
    "Reinstate": "InProgress",
    "Renew": "Succeeded",
    "Suspend": "Succeeded",
    "Unsubscribe": "Succeeded",
}
"""The status a webhook announces per action (the operation's own status may move on)."""


def webhook_payload(operation: Json, before: Json, source: str) -> Json:
    """What Microsoft POSTs for `operation`; `before` is the subscription before the change."""
    return {
        "id": operation["id"],
        "activityId": operation["activityId"],
        "publisherId": operation["publisherId"],
        "offerId": operation["offerId"],
        "planId": operation["planId"],
        "quantity": operation["quantity"],
        "subscriptionId": operation["subscriptionId"],
        "timeStamp": operation["timeStamp"],
        "action": operation["action"],
        "status": WEBHOOK_STATUS.get(operation["action"], operation["status"]),
        "operationRequestSource": source,
        "subscription": copy.deepcopy(before),
        "purchaseToken": None,
    }


def resolved(subscription: Json) -> Json:
    """The resolve answer for a landing-page token."""
    body: Json = {
        "id": subscription["id"],
        "subscriptionName": subscription["name"],
        "offerId": subscription["offerId"],
        "planId": subscription["planId"],
        "subscription": copy.deepcopy(subscription),
    }
    if "quantity" in subscription:
        body["quantity"] = subscription["quantity"]
    return body
