"""Lenient parsing of the marketplace's JSON into domain values, done once at the edge.

Microsoft asks for lenient deserialisation ("the schema may be expanded"), and real
bodies vary: padded status values, quantities as strings, null or "", 7-digit
fractions, missing fields. Unknown fields are ignored here (the raw body is kept by
the delivery record). What cannot be understood raises InvalidPayload naming the field.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from lifecycle.domain.events import EVENT_TYPES, Action, ChangePlan, ChangeQuantity, Event, UnknownAction
from lifecycle.domain.fingerprint import Listed, fingerprint_of
from lifecycle.domain.model import Operation, OperationStatus, Plan, ResolvedPurchase, Status, Subscription, Term
from lifecycle.errors import InvalidPayload

_STATUS_ALIASES = {"success": OperationStatus.SUCCEEDED, "succeeded": OperationStatus.SUCCEEDED}
_STATUSES = {status.value.lower(): status for status in Status}


def load_json(body: bytes | str) -> Mapping[str, Any]:
    """A JSON object, or InvalidPayload saying why not."""
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidPayload(f"body is not JSON: {error}") from None
    if not isinstance(value, dict):
        raise InvalidPayload(f"body is JSON {type(value).__name__}, expected an object")
    return value


def parse_webhook(payload: Mapping[str, Any]) -> Event:
    """A webhook body as a typed event; only `id`, `subscriptionId` and `action` are required."""
    operation_id = _required_text(payload, "id")
    subscription_id = _required_text(payload, "subscriptionId")
    raw_action = _required_text(payload, "action")
    action = _action(raw_action)
    snapshot = payload.get("subscription")
    common: dict[str, Any] = {
        "operation_id": operation_id,
        "subscription_id": subscription_id,
        "activity_id": _text(payload.get("activityId")),
        "timestamp": parse_datetime(payload.get("timeStamp"), "timeStamp"),
        "publisher_id": _text(payload.get("publisherId")),
        "offer_id": _text(payload.get("offerId")),
        "status": operation_status(payload.get("status")),
        "request_source": _text(payload.get("operationRequestSource")),
        "subscription": parse_subscription(snapshot, subscription_id) if isinstance(snapshot, dict) else None,
    }
    if action is None:
        return UnknownAction(name=raw_action, **common)
    # Minimal bodies omit the target: a 400 here would reject the customer's change, so
    # the target stays unknown and is read from the operation (webhook policy, processing).
    if action is Action.CHANGE_PLAN:
        return ChangePlan(plan_id=_text(payload.get("planId")), **common)
    if action is Action.CHANGE_QUANTITY:
        return ChangeQuantity(quantity=_lenient_quantity(payload.get("quantity")), **common)
    return EVENT_TYPES[action](**common)


def parse_subscription(data: Mapping[str, Any], fallback_id: str = "") -> Subscription:
    """A Fulfillment API subscription object (or a webhook's snapshot of one)."""
    subscription_id = _text(data.get("id")) or fallback_id
    if not subscription_id:
        raise InvalidPayload("subscription has no id")
    fields = _compared(data)
    term = Term(unit=fields.pop("term_unit"), start=fields.pop("term_start"), end=fields.pop("term_end"))
    return Subscription(id=subscription_id, term=term, **fields)


def parse_listed(data: Mapping[str, Any]) -> Listed:
    """An item of the list's pages: fingerprinted from its fields, parsed whole only when asked.

    Reads the compared fields as `parse_subscription` does (the same `_compared`), so it
    refuses what that refuses and its fingerprint is that of the parsed subscription.
    """
    subscription_id = _text(data.get("id"))
    if not subscription_id:
        raise InvalidPayload("subscription has no id")
    fields = _compared(data)
    return Listed(subscription_id, fields["status"], fingerprint_of(**fields),
                  functools.partial(parse_subscription, data))


def _compared(data: Mapping[str, Any]) -> dict[str, Any]:
    """A subscription object's fields, by the names `fingerprint_of` takes (the term spelt out)."""
    raw_term = data.get("term")
    term: Mapping[str, Any] = raw_term if isinstance(raw_term, dict) else {}
    return {
        "name": _text(data.get("name")),
        "publisher_id": _text(data.get("publisherId")),
        "offer_id": _text(data.get("offerId")),
        "plan_id": _text(data.get("planId")),
        "quantity": parse_quantity(data.get("quantity"), "quantity"),
        "status": subscription_status(data.get("saasSubscriptionStatus")),
        "term_unit": _text(term.get("termUnit")),
        "term_start": _date(term.get("startDate"), "term.startDate"),
        "term_end": _date(term.get("endDate"), "term.endDate"),
        "auto_renew": _flag(data.get("autoRenew")),
        "is_free_trial": _flag(data.get("isFreeTrial")),
        "is_test": _flag(data.get("isTest")),
        "beneficiary_tenant_id": _tenant(data.get("beneficiary")),
        "purchaser_tenant_id": _tenant(data.get("purchaser")),
        "sandbox_type": _text(data.get("sandboxType")) or "None",
    }


def parse_operation(data: Mapping[str, Any], subscription_id: str = "") -> Operation:
    return Operation(
        id=_required_text(data, "id"),
        subscription_id=_text(data.get("subscriptionId")) or subscription_id,
        action=_text(data.get("action")),
        status=operation_status(data.get("status")),
        activity_id=_text(data.get("activityId")),
        offer_id=_text(data.get("offerId")),
        plan_id=_text(data.get("planId")),
        quantity=parse_quantity(data.get("quantity"), "quantity"),
        timestamp=parse_datetime(data.get("timeStamp"), "timeStamp"),
        error_message=_text(data.get("errorMessage")),
    )


def parse_plan(data: Mapping[str, Any]) -> Plan:
    return Plan(
        plan_id=_required_text(data, "planId"),
        display_name=_text(data.get("displayName")),
        is_private=_flag(data.get("isPrivate")),
        is_per_seat=_flag(data.get("isPricePerSeat")),
        min_quantity=parse_quantity(data.get("minQuantity"), "minQuantity"),
        max_quantity=parse_quantity(data.get("maxQuantity"), "maxQuantity"),
        has_free_trials=_flag(data.get("hasFreeTrials")),
        is_stop_sell=_flag(data.get("isStopSell")),
    )


def parse_resolved(data: Mapping[str, Any]) -> ResolvedPurchase:
    subscription_id = _required_text(data, "id")
    snapshot = data.get("subscription")
    subscription = parse_subscription(snapshot if isinstance(snapshot, dict) else {}, subscription_id)
    return ResolvedPurchase(
        subscription_id=subscription_id,
        subscription_name=_text(data.get("subscriptionName")),
        offer_id=_text(data.get("offerId")) or subscription.offer_id,
        plan_id=_text(data.get("planId")) or subscription.plan_id,
        quantity=parse_quantity(data.get("quantity"), "quantity"),
        subscription=subscription,
    )


def subscription_status(value: object) -> Status:
    text = _text(value)
    status = _STATUSES.get(text.lower())  # a dict, not a loop: every listed item goes through here
    if status is None:
        raise InvalidPayload(f"saasSubscriptionStatus {text!r} is not a known status")
    return status


def operation_status(value: object) -> OperationStatus:
    text = _text(value).lower()
    if not text:
        return OperationStatus.NOT_STARTED
    for status in OperationStatus:
        if status.value.lower() == text:
            return status
    if text in _STATUS_ALIASES:
        return _STATUS_ALIASES[text]
    raise InvalidPayload(f"operation status {text!r} is not a known status")


def parse_quantity(value: object, name: str) -> int | None:
    """An int, a numeric string, or nothing (None, "", absent) for flat-rate plans."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = str(value).strip()
    if not text:
        return None
    if re.fullmatch(r"[+-]?\d{1,9}", text):
        return int(text)
    raise InvalidPayload(f"{name} {text[:40]!r} is not a whole number")


def _lenient_quantity(value: object) -> int | None:
    try:
        return parse_quantity(value, "quantity")
    except InvalidPayload:
        return None  # "seven" tells nothing; the operation's quantity will


def parse_datetime(value: object, name: str) -> datetime | None:
    """ISO 8601 in UTC; up to 7 fraction digits (Microsoft's) are cut to Python's 6."""
    text = _text(value)
    if not text:
        return None
    match = re.fullmatch(r"(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)?", text)
    if match is None:
        raise InvalidPayload(f"{name} {text[:40]!r} is not an ISO 8601 date and time")
    whole, fraction, zone = match.groups()
    fraction = ((fraction or "") + "000000")[:6]
    zone = "+00:00" if zone in (None, "Z") else zone
    try:
        return datetime.fromisoformat(f"{whole}.{fraction}{zone}").astimezone(UTC)
    except ValueError:
        raise InvalidPayload(f"{name} {text[:40]!r} is not a valid date and time") from None


def _date(value: object, name: str) -> date | None:
    text = _text(value)
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise InvalidPayload(f"{name} {text[:40]!r} is not a date") from None


def _action(raw: str) -> Action | None:
    for action in EVENT_TYPES:
        if action.value.lower() == raw.lower():
            return action
    return None


def _required_text(payload: Mapping[str, Any], name: str) -> str:
    text = _text(payload.get(name))
    if not text:
        raise InvalidPayload(f"field {name!r} is missing or empty")
    return text


def _text(value: object) -> str:
    if value is None or isinstance(value, (dict, list)):
        return ""
    return str(value).strip()


def _flag(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def _tenant(value: object) -> str:
    return _text(value.get("tenantId")) if isinstance(value, dict) else ""
