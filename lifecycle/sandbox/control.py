"""The sandbox's control surface: play the marketplace over HTTP (the CLI's `sandbox ...`).

Served next to the API on the same port, outside `/api`, without authentication (it
listens on 127.0.0.1 only) and never subject to injected faults. JSON in, JSON out:

    GET    /sandbox/catalog
    GET    /sandbox/subscriptions                  every subscription, no paging
    GET    /sandbox/subscriptions/{id}             one subscription (the truth)
    POST   /sandbox/purchases                      {offerId, planId, quantity?, activated?, csp?,
                                                    beneficiaryTenantId?, isTest?, freeTrial?,
                                                    termUnit?, autoRenew?} -> {subscription, token}
    POST   /sandbox/subscriptions/{id}/{action}    activate | suspend | reinstate | renew |
                                                   unsubscribe | change-plan {planId} |
                                                   change-quantity {quantity}; {deliver: false}
                                                   skips the webhook (a missed delivery);
                                                   {force: true} on a change skips the
                                                   marketplace's own plan/seat checks, so the
                                                   publisher's rejection can be exercised
    GET    /sandbox/operations/{opId}              the operation's record
    POST   /sandbox/operations/{opId}/redeliver    {times?} -> the delivery result
    POST   /sandbox/faults                         {status?, retryAfter?, delay?, times?, path?, method?}
    DELETE /sandbox/faults
    POST   /sandbox/keys/rotate | /sandbox/keys/retire
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from lifecycle.sandbox import catalog, subscriptions
from lifecycle.sandbox.entra import Entra
from lifecycle.sandbox.errors import SandboxError, bad_request
from lifecycle.sandbox.marketplace import AZURE, Marketplace
from lifecycle.sandbox.routes import Response
from lifecycle.sandbox.webhook import WebhookSender

PREFIX = "/sandbox"


@dataclasses.dataclass(frozen=True, slots=True)
class Controls:
    """What a control call may drive."""

    marketplace: Marketplace
    entra: Entra
    webhooks: WebhookSender | None


def plain(value: Any) -> Any:
    """Records (dataclasses with datetimes) as JSON-ready values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _purchase(c: Controls, body: dict[str, Any], _: re.Match[str]) -> Response:
    subscription, token = c.marketplace.purchase(
        str(body.get("offerId", "")),
        str(body.get("planId", "")),
        body.get("quantity"),
        activated=bool(body.get("activated", False)),
        beneficiary_tenant=body.get("beneficiaryTenantId"),
        purchaser_tenant=body.get("purchaserTenantId"),
        csp=bool(body.get("csp", False)),
        is_test=bool(body.get("isTest", False)),
        free_trial=bool(body.get("freeTrial", False)),
        term_unit=str(body.get("termUnit", "P1M")),
        auto_renew=bool(body.get("autoRenew", True)),
    )
    return Response(201, {"subscription": subscription, "token": token})


def _act(c: Controls, body: dict[str, Any], match: re.Match[str]) -> Response:
    market, subscription_id, action = c.marketplace, match["id"], match["action"]
    deliver = bool(body.get("deliver", True))
    # Validated by the marketplace like any customer's request (400 when wrong).
    plan_id: Any = body.get("planId")
    quantity: Any = body.get("quantity")
    if action == "activate":
        market.activate(subscription_id, plan_id)
        return Response(200, market.get(subscription_id))
    if action in ("change-plan", "change-quantity") and body.get("force"):
        return Response(200, _forced(market, subscription_id, action, plan_id, quantity, deliver))
    if action == "change-plan":
        return Response(200, market.change_plan(subscription_id, plan_id, deliver=deliver))
    if action == "change-quantity":
        return Response(200, market.change_quantity(subscription_id, quantity, deliver=deliver))
    simple: dict[str, Callable[..., dict[str, Any]]] = {
        "suspend": market.suspend,
        "reinstate": market.reinstate,
        "renew": market.renew,
        "unsubscribe": market.unsubscribe,
    }
    if action not in simple:
        raise SandboxError(404, "NotFound", f"Unknown action {action!r}")
    return Response(200, simple[action](subscription_id, deliver=deliver))


def _forced(market: Marketplace, subscription_id: str, action: str, plan_id: Any, quantity: Any,
            deliver: bool) -> dict[str, Any]:
    """A change the marketplace's own checks would refuse (a seat count above the plan's maximum,
    a plan outside the catalog), made anyway: only the status rule and the value's type hold."""
    if action == "change-plan" and (not isinstance(plan_id, str) or not plan_id):
        raise bad_request("planId must be a non-empty string", "planId")
    if action == "change-quantity" and (isinstance(quantity, bool) or not isinstance(quantity, int)):
        raise bad_request("quantity must be an integer", "quantity")
    name = "ChangePlan" if action == "change-plan" else "ChangeQuantity"
    target = {"plan_id": plan_id} if action == "change-plan" else {"quantity": quantity}
    with market._lock:  # as Marketplace.change_plan/change_quantity do, minus their checks
        market._settle()
        subscription = market._get(subscription_id)
        subscriptions.require_status(subscription, name)
        operation = market._start(subscription, name, AZURE, **target)
    return market._notify(operation, deliver)


def _redeliver(c: Controls, body: dict[str, Any], match: re.Match[str]) -> Response:
    if c.webhooks is None or not c.webhooks.url:
        raise bad_request("No webhook URL is configured")
    c.marketplace.record(match["op"])  # 404 for an unknown operation
    return Response(200, plain(c.webhooks.deliver(match["op"], times=int(body.get("times", 1)))))


def _inject(c: Controls, body: dict[str, Any], _: re.Match[str]) -> Response:
    fault = c.marketplace.inject(
        status=body.get("status"),
        retry_after=body.get("retryAfter"),
        delay=float(body.get("delay", 0.0)),
        times=int(body.get("times", 1)),
        path=body.get("path"),
        method=body.get("method"),
    )
    return Response(201, plain(fault))


def _keys(c: Controls, _: dict[str, Any], match: re.Match[str]) -> Response:
    if match["verb"] == "rotate":
        c.entra.rotate_keys()
    else:
        c.entra.retire_old_keys()
    return Response(200, {"kids": c.entra.keys.kids})


def _catalog(c: Controls, _: dict[str, Any], __: re.Match[str]) -> Response:
    return Response(200, catalog.CATALOG)


def _subscriptions(c: Controls, _: dict[str, Any], __: re.Match[str]) -> Response:
    market = c.marketplace
    return Response(200, {"subscriptions": [market.get(sid) for sid in market.subscription_ids()]})


def _subscription(c: Controls, _: dict[str, Any], match: re.Match[str]) -> Response:
    return Response(200, c.marketplace.get(match["id"]))


def _record(c: Controls, _: dict[str, Any], match: re.Match[str]) -> Response:
    return Response(200, plain(c.marketplace.record(match["op"])))


def _clear_faults(c: Controls, _: dict[str, Any], __: re.Match[str]) -> Response:
    c.marketplace.faults.clear()
    return Response(204)


Handler = Callable[[Controls, dict[str, Any], re.Match[str]], Response]
ROUTES: list[tuple[str, re.Pattern[str], Handler]] = [
    ("GET", re.compile(r"^/catalog$"), _catalog),
    ("GET", re.compile(r"^/subscriptions$"), _subscriptions),
    ("GET", re.compile(r"^/subscriptions/(?P<id>[^/]+)$"), _subscription),
    ("POST", re.compile(r"^/purchases$"), _purchase),
    ("POST", re.compile(r"^/subscriptions/(?P<id>[^/]+)/(?P<action>[a-z-]+)$"), _act),
    ("GET", re.compile(r"^/operations/(?P<op>[^/]+)$"), _record),
    ("POST", re.compile(r"^/operations/(?P<op>[^/]+)/redeliver$"), _redeliver),
    ("POST", re.compile(r"^/faults$"), _inject),
    ("DELETE", re.compile(r"^/faults$"), _clear_faults),
    ("POST", re.compile(r"^/keys/(?P<verb>rotate|retire)$"), _keys),
]


def control(controls: Controls, method: str, path: str, body: object) -> Response:
    """Run a control call; `path` is relative to PREFIX. SandboxError for refusals."""
    if body is not None and not isinstance(body, dict):
        raise bad_request("The body must be a JSON object")
    for verb, pattern, handler in ROUTES:
        match = pattern.match(path.rstrip("/"))
        if match is not None and verb == method:
            return handler(controls, body or {}, match)
    raise SandboxError(404, "NotFound", f"No control at {method} {PREFIX}{path}")
