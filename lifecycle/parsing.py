"""Lenient parsing of the marketplace's JSON into domain values, done once at the edge.

Microsoft asks for lenient deserialisation ("the schema may be expanded"), and real
bodies vary: padded status values, quantities as strings, null or "", 7-digit
fractions, missing fields. Unknown fields are ignored here (the raw body is kept by
the delivery record). What cannot be understood raises InvalidPayload naming the field.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from lifecycle.domain.events import EVENT_TYPES, Action, ChangePlan, ChangeQuantity, Event, UnknownAction
from lifecycle.domain.fingerprint import Listed, ListItem, Unreadable, fingerprint_of
from lifecycle.domain.model import Operation, OperationStatus, Plan, ResolvedPurchase, Subscription, Term
from lifecycle.errors import InvalidPayload
from lifecycle.lenient import (
    flag,
    lenient_quantity,
    operation_status,
    parse_date,
    parse_datetime,
    parse_quantity,
    stripped,
    subscription_status,
    tenant,
)

_T = TypeVar("_T")


MAX_ID_CHARS = 90
"""The longest operation or subscription id taken. Real ones are GUIDs (36); the queue's message
and session ids hold 128 characters, and a re-send or replay adds at most 29 to the operation id."""


def json_text(body: bytes) -> str:
    """A JSON body as text, decoded as `json.loads` decodes bytes (UTF-8, -16 or -32, a BOM or not),
    the BOM dropped: what is kept and enqueued then parses exactly as what was judged."""
    try:
        return body.decode(json.detect_encoding(body)).removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        raise InvalidPayload(f"body is not JSON: {error}") from None


def load_json(body: bytes | str) -> Mapping[str, Any]:
    """A JSON object, or InvalidPayload saying why not."""
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidPayload(f"body is not JSON: {error}") from None
    except RecursionError:
        raise InvalidPayload("body is not JSON we read: nested too deeply") from None
    if not isinstance(value, dict):
        raise InvalidPayload(f"body is JSON {type(value).__name__}, expected an object")
    return value


def parse_webhook(payload: Mapping[str, Any]) -> Event:
    """A webhook body as a typed event; only `id`, `subscriptionId` and `action` are required.

    The rest is advisory: the operations API is the authority on what was asked and when,
    and processing asks it. So a value that cannot be read (a timeStamp that is no date,
    a status or a snapshot this code does not know) is left out, never refused: a 400
    would reject the customer's change on ChangePlan/ChangeQuantity and lose the delivery
    on any other action. The raw body is kept by the delivery record.
    """
    operation_id = _required_id(payload, "id")
    subscription_id = _canonical_guid(_required_id(payload, "subscriptionId"))
    raw_action = _required_text(payload, "action")
    action = _action(raw_action)
    snapshot = payload.get("subscription")
    common: dict[str, Any] = {
        "operation_id": operation_id,
        "subscription_id": subscription_id,
        "activity_id": stripped(payload.get("activityId")),
        "timestamp": _advisory(lambda: parse_datetime(payload.get("timeStamp"), "timeStamp"), None),
        "publisher_id": stripped(payload.get("publisherId")),
        "offer_id": stripped(payload.get("offerId")),
        "status": _advisory(lambda: operation_status(payload.get("status")), OperationStatus.NOT_STARTED),
        "request_source": stripped(payload.get("operationRequestSource")),
        "subscription": _advisory(lambda: parse_subscription(snapshot, subscription_id), None)
        if isinstance(snapshot, dict) else None,
    }
    if action is None:
        return UnknownAction(name=raw_action, **common)
    # Minimal bodies omit the target: a 400 here would reject the customer's change, so
    # the target stays unknown and is read from the operation (webhook policy, processing).
    if action is Action.CHANGE_PLAN:
        return ChangePlan(plan_id=stripped(payload.get("planId")), **common)
    if action is Action.CHANGE_QUANTITY:
        return ChangeQuantity(quantity=lenient_quantity(payload.get("quantity")), **common)
    return EVENT_TYPES[action](**common)


def _advisory(read: Callable[[], _T], absent: _T) -> _T:
    """What `read` finds, or `absent` when the value cannot be read (see parse_webhook)."""
    try:
        return read()
    except InvalidPayload:
        return absent


def parse_subscription(data: Mapping[str, Any], fallback_id: str = "") -> Subscription:
    """A Fulfillment API subscription object (or a webhook's snapshot of one)."""
    subscription_id = stripped(data.get("id")) or fallback_id
    if not subscription_id:
        raise InvalidPayload("subscription has no id")
    fields = _compared(data)
    term = Term(unit=fields.pop("term_unit"), start=fields.pop("term_start"), end=fields.pop("term_end"))
    return Subscription(id=subscription_id, term=term, **fields)


def parse_listed_page(items: list[Any]) -> list[ListItem]:
    """A page of the list, each item `parse_listed`, or Unreadable when that refuses it."""
    page: list[ListItem] = []
    for item in items:
        try:
            page.append(parse_listed(item if isinstance(item, dict) else {}))
        except InvalidPayload as error:
            page.append(Unreadable(stripped(item.get("id")) if isinstance(item, dict) else "", str(error)))
    return page


def parse_listed(data: Mapping[str, Any]) -> Listed:
    """An item of the list's pages: fingerprinted from its fields, parsed whole only when asked.

    Reads the compared fields as `parse_subscription` does (the same `_compared`), so it
    refuses what that refuses and its fingerprint is that of the parsed subscription.
    """
    subscription_id = stripped(data.get("id"))
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
        "name": stripped(data.get("name")),
        "publisher_id": stripped(data.get("publisherId")),
        "offer_id": stripped(data.get("offerId")),
        "plan_id": stripped(data.get("planId")),
        "quantity": parse_quantity(data.get("quantity"), "quantity"),
        "status": subscription_status(data.get("saasSubscriptionStatus")),
        "term_unit": stripped(term.get("termUnit")),
        "term_start": parse_date(term.get("startDate"), "term.startDate"),
        "term_end": parse_date(term.get("endDate"), "term.endDate"),
        "auto_renew": flag(data.get("autoRenew")),
        "is_free_trial": flag(data.get("isFreeTrial")),
        "is_test": flag(data.get("isTest")),
        "beneficiary_tenant_id": tenant(data.get("beneficiary")),
        "purchaser_tenant_id": tenant(data.get("purchaser")),
        "sandbox_type": stripped(data.get("sandboxType")) or "None",
    }


def parse_operation(data: Mapping[str, Any], subscription_id: str = "") -> Operation:
    return Operation(
        id=_required_text(data, "id"),
        subscription_id=stripped(data.get("subscriptionId")) or subscription_id,
        action=stripped(data.get("action")),
        status=operation_status(data.get("status")),
        activity_id=stripped(data.get("activityId")),
        offer_id=stripped(data.get("offerId")),
        plan_id=stripped(data.get("planId")),
        quantity=parse_quantity(data.get("quantity"), "quantity"),
        timestamp=parse_datetime(data.get("timeStamp"), "timeStamp"),
        error_message=stripped(data.get("errorMessage")),
    )


def parse_plan(data: Mapping[str, Any]) -> Plan:
    return Plan(
        plan_id=_required_text(data, "planId"),
        display_name=stripped(data.get("displayName")),
        is_private=flag(data.get("isPrivate")),
        is_per_seat=flag(data.get("isPricePerSeat")),
        min_quantity=parse_quantity(data.get("minQuantity"), "minQuantity"),
        max_quantity=parse_quantity(data.get("maxQuantity"), "maxQuantity"),
        has_free_trials=flag(data.get("hasFreeTrials")),
        is_stop_sell=flag(data.get("isStopSell")),
    )


def parse_resolved(data: Mapping[str, Any]) -> ResolvedPurchase:
    subscription_id = _required_text(data, "id")
    snapshot = data.get("subscription")
    subscription = parse_subscription(snapshot if isinstance(snapshot, dict) else {}, subscription_id)
    return ResolvedPurchase(
        subscription_id=subscription_id,
        subscription_name=stripped(data.get("subscriptionName")),
        offer_id=stripped(data.get("offerId")) or subscription.offer_id,
        plan_id=stripped(data.get("planId")) or subscription.plan_id,
        quantity=parse_quantity(data.get("quantity"), "quantity"),
        subscription=subscription,
    )


def _action(raw: str) -> Action | None:
    for action in EVENT_TYPES:
        if action.value.lower() == raw.lower():
            return action
    return None


def _required_id(payload: Mapping[str, Any], name: str) -> str:
    text = _required_text(payload, name)
    if len(text) > MAX_ID_CHARS:
        raise InvalidPayload(f"field {name!r} is {len(text)} characters long; an id has at most {MAX_ID_CHARS}")
    return text


def _canonical_guid(text: str) -> str:
    """A GUID as the marketplace spells its ids (lowercase, hyphenated), so one subscription has one
    partition and one spelling in every API call whatever case a body used; other text as it is."""
    if len(text) == 36 and text.islower():
        return text  # the marketplace's own spelling: no parse on the common path
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return text


def _required_text(payload: Mapping[str, Any], name: str) -> str:
    text = stripped(payload.get(name))
    if not text:
        raise InvalidPayload(f"field {name!r} is missing or empty")
    return text
