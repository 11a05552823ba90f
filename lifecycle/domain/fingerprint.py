"""What a reconciliation scan keeps of each side: a fingerprint of the compared fields.

A run compares our table with the marketplace's list by fingerprint, one int per
subscription, and builds a whole subscription only where they differ. The adapters
fingerprint a table row or a list item with `fingerprint_of`, from the values they decode,
without building the `Subscription`; tests hold those equal to `fingerprint` of the decoded
value (tests/contract, tests/unit/test_reconcile_fingerprint.py). The fields are those
`reconcile.COMPARED` names, the term spelt out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from lifecycle.domain.model import Status, Subscription


def fingerprint_of(
    *, status: Status, plan_id: str, quantity: int | None, term_unit: str, term_start: date | None,
    term_end: date | None, is_free_trial: bool, auto_renew: bool, offer_id: str, name: str, publisher_id: str,
    beneficiary_tenant_id: str, purchaser_tenant_id: str, is_test: bool, sandbox_type: str,
) -> int:
    """A hash of every compared field: equal when they agree."""
    return hash((status, plan_id, quantity, term_unit, term_start, term_end, is_free_trial, auto_renew, offer_id,
                 name, publisher_id, beneficiary_tenant_id, purchaser_tenant_id, is_test, sandbox_type))


def fingerprint(subscription: Subscription) -> int:
    """`fingerprint_of` a subscription's compared fields.

    Lets a run keep one int per subscription of ours instead of the subscription itself;
    a mismatch only sends us to read the real row, so a collision cannot cause a repair.
    """
    term = subscription.term
    return fingerprint_of(
        status=subscription.status, plan_id=subscription.plan_id, quantity=subscription.quantity,
        term_unit=term.unit, term_start=term.start, term_end=term.end, is_free_trial=subscription.is_free_trial,
        auto_renew=subscription.auto_renew, offer_id=subscription.offer_id, name=subscription.name,
        publisher_id=subscription.publisher_id, beneficiary_tenant_id=subscription.beneficiary_tenant_id,
        purchaser_tenant_id=subscription.purchaser_tenant_id, is_test=subscription.is_test,
        sandbox_type=subscription.sandbox_type,
    )


@dataclass(frozen=True, slots=True)
class Fingerprinted:
    """A subscription of ours as a run's scan keeps it: its fingerprint, and since when it waits
    for activation (`pending_since`; None unless pending)."""

    id: str
    fingerprint: int
    pending_since: datetime | None


@dataclass(frozen=True, slots=True)
class Listed:
    """An item of the marketplace's list as a run's scan sees it; `parse` builds the whole
    subscription, which a run asks for only when the fingerprints differ."""

    id: str
    status: Status
    fingerprint: int
    parse: Callable[[], Subscription]


@dataclass(frozen=True, slots=True)
class Unreadable:
    """An item of the marketplace's list that cannot be read (a status this code does not
    know, a date that is no date): its id ("" if it has none) and why. A run reports it and
    goes on; one odd subscription must not stop every run that meets it."""

    id: str
    reason: str


ListItem = Listed | Unreadable
