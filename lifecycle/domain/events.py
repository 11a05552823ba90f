"""Webhook events: one frozen type per marketplace action, plus an explicit unknown.

An event is what a delivery *claims*; the processing service verifies it with the
operations API before anything is decided. `subscription` is the snapshot the
marketplace attached (state before the pending change; its status is unreliable).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from lifecycle.domain.model import OperationStatus, Subscription


class Action(StrEnum):
    """Webhook actions, and ACTIVATE: our own, raised by the activation flow (no webhook)."""

    CHANGE_PLAN = "ChangePlan"
    CHANGE_QUANTITY = "ChangeQuantity"
    SUSPEND = "Suspend"
    REINSTATE = "Reinstate"
    RENEW = "Renew"
    UNSUBSCRIBE = "Unsubscribe"
    ACTIVATE = "Activate"
    UNKNOWN = "Unknown"


class Source(StrEnum):
    """Where a change came from, as the history shows it."""

    WEBHOOK = "webhook"
    REPLAY = "replay"
    RECONCILIATION = "reconciliation"
    ACTIVATION = "activation"


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Fields every delivery carries; `operation_id` is the webhook's `id`."""

    action: ClassVar[Action] = Action.UNKNOWN

    operation_id: str
    subscription_id: str
    activity_id: str = ""
    timestamp: datetime | None = None
    publisher_id: str = ""
    offer_id: str = ""
    status: OperationStatus = OperationStatus.NOT_STARTED
    request_source: str = ""
    subscription: Subscription | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangePlan(Event):
    """`plan_id` is the target; "" when a minimal body left it out (the operation has it)."""

    action: ClassVar[Action] = Action.CHANGE_PLAN
    plan_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeQuantity(Event):
    """`quantity` is the target; None when a minimal body left it out (the operation has it)."""

    action: ClassVar[Action] = Action.CHANGE_QUANTITY
    quantity: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Suspend(Event):
    action: ClassVar[Action] = Action.SUSPEND


@dataclass(frozen=True, slots=True, kw_only=True)
class Reinstate(Event):
    action: ClassVar[Action] = Action.REINSTATE


@dataclass(frozen=True, slots=True, kw_only=True)
class Renew(Event):
    action: ClassVar[Action] = Action.RENEW


@dataclass(frozen=True, slots=True, kw_only=True)
class Unsubscribe(Event):
    action: ClassVar[Action] = Action.UNSUBSCRIBE


@dataclass(frozen=True, slots=True, kw_only=True)
class Activate(Event):
    """Not a webhook: the landing-page flow confirmed activation of a pending purchase."""

    action: ClassVar[Action] = Action.ACTIVATE


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownAction(Event):
    """An action we do not know (`Subscribe`, `Transfer` have been seen): recorded, not applied."""

    action: ClassVar[Action] = Action.UNKNOWN
    name: str = ""


EVENT_TYPES: dict[Action, type[Event]] = {
    Action.CHANGE_PLAN: ChangePlan,
    Action.CHANGE_QUANTITY: ChangeQuantity,
    Action.SUSPEND: Suspend,
    Action.REINSTATE: Reinstate,
    Action.RENEW: Renew,
    Action.UNSUBSCRIBE: Unsubscribe,
}
"""The actions a webhook may carry; ACTIVATE never arrives by webhook."""
