"""What a SaaS subscription is, as far as the worker needs to know.

Values are frozen: a change is a new value (`dataclasses.replace`), so a decision can
return the new state without touching the old one. Only tenant ids are kept of the
beneficiary and purchaser: e-mail addresses are personal data we do not need.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum


class Status(StrEnum):
    """`saasSubscriptionStatus` as the Fulfillment API spells it."""

    NOT_STARTED = "NotStarted"
    PENDING_FULFILLMENT_START = "PendingFulfillmentStart"
    SUBSCRIBED = "Subscribed"
    SUSPENDED = "Suspended"
    UNSUBSCRIBED = "Unsubscribed"


class OperationStatus(StrEnum):
    """Status of a marketplace operation; NOT_FOUND when the operations API has none."""

    NOT_STARTED = "NotStarted"
    IN_PROGRESS = "InProgress"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CONFLICT = "Conflict"
    NOT_FOUND = "NotFound"

    @property
    def is_final(self) -> bool:
        return self in (OperationStatus.SUCCEEDED, OperationStatus.FAILED, OperationStatus.CONFLICT)


@dataclass(frozen=True, slots=True)
class Term:
    """The current billing term; dates may be unknown (the API omits them at times)."""

    unit: str = ""
    start: date | None = None
    end: date | None = None


@dataclass(frozen=True, slots=True)
class ChangeTimes:
    """When each aspect last changed, by the marketplace's timestamps.

    Deliveries arrive out of order; a change older than the last applied change *of the
    same aspect* is superseded, while a change of another aspect still applies.
    """

    status: datetime | None = None
    plan: datetime | None = None
    quantity: datetime | None = None
    term: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscription:
    """One SaaS subscription: the marketplace's fields plus the last operation applied here."""

    id: str
    name: str = ""
    publisher_id: str = ""
    offer_id: str = ""
    plan_id: str = ""
    quantity: int | None = None
    status: Status = Status.PENDING_FULFILLMENT_START
    term: Term = field(default_factory=Term)
    auto_renew: bool = False
    is_free_trial: bool = False
    is_test: bool = False
    beneficiary_tenant_id: str = ""
    purchaser_tenant_id: str = ""
    sandbox_type: str = "None"
    last_operation_id: str | None = None
    last_operation_at: datetime | None = None
    changed_at: ChangeTimes = field(default_factory=ChangeTimes)

    @property
    def is_csp(self) -> bool:
        """Bought by a CSP partner for a customer: the purchaser's tenant is not the beneficiary's.
        `sandboxType` says Csp only for a purchase in a CSP integration sandbox, so it is not
        the sign of a real one, but it counts too."""
        purchaser, beneficiary = self.purchaser_tenant_id.lower(), self.beneficiary_tenant_id.lower()
        return bool(purchaser and beneficiary and purchaser != beneficiary) or self.sandbox_type.lower() == "csp"


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """One entry of `listAvailablePlans`; seat bounds only on per-seat plans."""

    plan_id: str
    display_name: str = ""
    is_private: bool = False
    is_per_seat: bool = False
    min_quantity: int | None = None
    max_quantity: int | None = None
    has_free_trials: bool = False
    is_stop_sell: bool = False

    def admits(self, quantity: int) -> bool:
        """Whether `quantity` seats fall within this plan's bounds; no minimum given means one seat."""
        if quantity < (self.min_quantity if self.min_quantity is not None else 1):
            return False
        return self.max_quantity is None or quantity <= self.max_quantity


@dataclass(frozen=True, slots=True, kw_only=True)
class Operation:
    """A marketplace operation as `GET .../operations/{id}` returns it."""

    id: str
    subscription_id: str
    action: str = ""
    status: OperationStatus = OperationStatus.NOT_STARTED
    activity_id: str = ""
    offer_id: str = ""
    plan_id: str = ""
    quantity: int | None = None
    timestamp: datetime | None = None
    error_message: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ResolvedPurchase:
    """What resolving a landing-page token tells: the subscription it names."""

    subscription_id: str
    subscription_name: str
    offer_id: str
    plan_id: str
    quantity: int | None
    subscription: Subscription
