"""The product event: versioned JSON with a stable id, built once per applied change.

    {"specVersion": "1", "id": "evt_…", "type": "subscription.planChanged",
     "occurredAt": "2024-05-01T12:00:00Z", "operationId": "…", "subscription": {…}}

Versioning rule: within specVersion "1" fields are only ever added (consumers ignore what
they do not know); removing or changing the meaning of a field makes specVersion "2".
The id is derived from the subscription, the operation id and the change, so the same change always gets
the same id however often it is written or sent: products deduplicate by it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lifecycle.domain.events import ChangePlan, ChangeQuantity
from lifecycle.domain.history import ChangeKind
from lifecycle.domain.model import Subscription

SPEC_VERSION = "1"

EVENT_TYPES: dict[ChangeKind, str] = {
    ChangeKind.ACTIVATED: "subscription.activated",
    ChangeKind.PLAN_CHANGED: "subscription.planChanged",
    ChangeKind.QUANTITY_CHANGED: "subscription.quantityChanged",
    ChangeKind.SUSPENDED: "subscription.suspended",
    ChangeKind.REINSTATED: "subscription.reinstated",
    ChangeKind.RENEWED: "subscription.renewed",
    ChangeKind.UNSUBSCRIBED: "subscription.unsubscribed",
    # We learnt the marketplace's truth outside a webhook (reconciliation, a missed event):
    # the subscription carries the whole current state.
    ChangeKind.RESYNCED: "subscription.synced",
}
PROPOSAL_TYPE = "subscription.changeProposed"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProductEvent:
    id: str
    type: str
    body: str  # the exact JSON that is signed and sent


def event_id(subscription_id: str, operation_id: str, change: ChangeKind) -> str:
    """Stable across retries, redeliveries and re-writes of the same change; the subscription is
    part of it because one reconciliation run repairs many subscriptions under one operation id."""
    key = f"{subscription_id}\n{operation_id}\n{change.value}"
    return "evt_" + hashlib.sha256(key.encode()).hexdigest()[:32]


def build_event(change: ChangeKind, subscription: Subscription, *, operation_id: str, at: datetime) -> ProductEvent:
    identity = event_id(subscription.id, operation_id, change)
    kind = EVENT_TYPES[change]
    body = {
        "specVersion": SPEC_VERSION,
        "id": identity,
        "type": kind,
        "occurredAt": _time(at),
        "operationId": operation_id,
        "subscription": subscription_json(subscription),
    }
    return ProductEvent(id=identity, type=kind, body=json.dumps(body, separators=(",", ":")))


def proposal_body(event: ChangePlan | ChangeQuantity, subscription: Subscription, *, at: datetime) -> str:
    """The veto request: the change the marketplace proposes and the subscription as it is now."""
    proposed: dict[str, Any] = {"action": event.action.value, "planId": subscription.plan_id,
                                "quantity": subscription.quantity}
    if isinstance(event, ChangePlan):
        proposed["planId"] = event.plan_id
    else:
        proposed["quantity"] = event.quantity
    body = {
        "specVersion": SPEC_VERSION,
        "id": f"prop_{hashlib.sha256(event.operation_id.encode()).hexdigest()[:32]}",
        "type": PROPOSAL_TYPE,
        "occurredAt": _time(at),
        "operationId": event.operation_id,
        "proposed": proposed,
        "subscription": subscription_json(subscription),
    }
    return json.dumps(body, separators=(",", ":"))


def subscription_json(subscription: Subscription) -> dict[str, Any]:
    """What a product needs to provision and bill: no e-mail addresses, only tenant ids."""
    term = subscription.term
    return {
        "id": subscription.id,
        "name": subscription.name,
        "offerId": subscription.offer_id,
        "planId": subscription.plan_id,
        "quantity": subscription.quantity,
        "status": subscription.status.value,
        "beneficiaryTenantId": subscription.beneficiary_tenant_id,
        "purchaserTenantId": subscription.purchaser_tenant_id,
        "term": {"unit": term.unit, "startDate": term.start.isoformat() if term.start else None,
                 "endDate": term.end.isoformat() if term.end else None},
        "autoRenew": subscription.auto_renew,
        "isFreeTrial": subscription.is_free_trial,
        "isTest": subscription.is_test,
        "isCsp": subscription.is_csp,
    }


def _time(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
