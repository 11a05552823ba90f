"""Small builders for domain values used across unit tests."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from lifecycle.domain.events import EVENT_TYPES, Action, Activate, ChangePlan, ChangeQuantity, Event
from lifecycle.domain.model import OperationStatus, Status, Subscription, Term

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def new_id() -> str:
    return str(uuid.uuid4())


def subscription(status: Status = Status.SUBSCRIBED, **fields: Any) -> Subscription:
    base = Subscription(
        id=fields.pop("id", new_id()),
        offer_id="contoso-seats",
        plan_id="team",
        quantity=5,
        status=status,
        term=Term("P1M", date(2026, 11, 1), date(2026, 11, 30)),
        auto_renew=True,
        beneficiary_tenant_id="tenant-b",
        purchaser_tenant_id="tenant-p",
    )
    return replace(base, **fields)


def event(action: Action, sub: Subscription, *, at: datetime = T0, op: str | None = None, **fields: Any) -> Event:
    common: dict[str, Any] = {
        "operation_id": op or new_id(),
        "subscription_id": sub.id,
        "activity_id": new_id(),
        "timestamp": at,
        "status": OperationStatus.IN_PROGRESS,
    }
    plan_id = fields.pop("plan_id", "business")
    quantity = fields.pop("quantity", 7)
    common.update(fields)
    if action is Action.CHANGE_PLAN:
        return ChangePlan(plan_id=plan_id, **common)
    if action is Action.CHANGE_QUANTITY:
        return ChangeQuantity(quantity=quantity, **common)
    if action is Action.ACTIVATE:
        return Activate(**common)
    return EVENT_TYPES[action](**common)


def later(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)
