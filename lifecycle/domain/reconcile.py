"""Reconciliation's judgement: how our state differs from the marketplace's, and what to do about it.

Rules, in the order `compare` and `plan_repair` apply them:

1. The marketplace is the truth. Each aspect that differs (status, plan, quantity, term,
   autoRenew, descriptive details) is one finding of its own kind.
2. A subscription the marketplace lists and we do not know is adopted whole (ADOPT).
3. Drift is repaired from the truth (REPAIR) when it is safe: the marketplace's status can
   follow ours through the lifecycle's TABLE, so we merely missed events. When it cannot
   (ours is Unsubscribed, or the marketplace shows a status ours already left), nothing of
   that subscription changes and every finding is reported (REPORT): a person decides.
4. Reported only: a subscription we know that the marketplace does not list, one pending
   fulfilment start for longer than allowed (billing never started), and operations still
   waiting for our answer.
5. A repair keeps our bookkeeping (the last operation applied) and raises each repaired
   aspect's change time to when the truth was seen, so an older webhook still in
   Microsoft's eight hours of retries cannot undo it; a newer one still applies.
6. Drift in an aspect a webhook set recently (within `Recent`: minutes ago) waits for
   the next run (WAIT). The list may not show yet a change the marketplace made a moment
   ago (a plan or seat change applied on our acknowledgement or its own auto-accept), and
   taking the list's older value would tell the product to undo what the customer just
   did. Nothing of that subscription changes in this run; the next run, reading the list
   afresh, repairs whatever still differs. A stamp later than the window's end (a clock
   far ahead, a forged time) is not recent: waiting on it would wait for ever.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from lifecycle.domain.events import Action, Source
from lifecycle.domain.history import FieldChange, HistoryEntry, Outcome, diff
from lifecycle.domain.lifecycle import PENDING, TABLE
from lifecycle.domain.model import ChangeTimes, Operation, Status, Subscription, Term


class FindingKind(StrEnum):
    MISSING_LOCALLY = "missing_locally"
    STATUS = "status_mismatch"
    PLAN = "plan_mismatch"
    QUANTITY = "quantity_mismatch"
    TERM = "term_mismatch"
    AUTO_RENEW = "auto_renew_mismatch"
    DETAILS = "details_mismatch"  # offer, tenants, name, test flag: descriptive, still the truth's
    ABSENT_REMOTELY = "absent_remotely"
    STUCK_PENDING = "stuck_pending"
    OUTSTANDING_OPERATION = "outstanding_operation"


class Remedy(StrEnum):
    ADOPT = "adopt"  # create our state from the marketplace's subscription
    REPAIR = "repair"  # take the marketplace's value
    WAIT = "wait"  # ours changed after the truth may have been read: the next run decides
    REPORT = "report"  # change nothing; a person looks


@dataclass(frozen=True, slots=True)
class Finding:
    """One difference, and the remedy a run takes (a dry run only says it would)."""

    subscription_id: str
    kind: FindingKind
    remedy: Remedy
    ours: str = ""
    theirs: str = ""
    detail: str = ""


# Which fields make up each aspect; the status aspect comes first, as it decides safety.
ASPECTS: tuple[tuple[FindingKind, tuple[str, ...]], ...] = (
    (FindingKind.STATUS, ("status",)),
    (FindingKind.PLAN, ("plan_id",)),
    (FindingKind.QUANTITY, ("quantity",)),
    (FindingKind.TERM, ("term", "is_free_trial")),
    (FindingKind.AUTO_RENEW, ("auto_renew",)),
    (FindingKind.DETAILS, ("offer_id", "name", "publisher_id", "beneficiary_tenant_id", "purchaser_tenant_id",
                           "is_test", "sandbox_type")),
)
COMPARED = tuple(name for _, names in ASPECTS for name in names)
_STAMPED = {FindingKind.STATUS: "status", FindingKind.PLAN: "plan", FindingKind.QUANTITY: "quantity",
            FindingKind.TERM: "term"}
"""The aspects that keep a change time (`ChangeTimes`), by the finding of their drift."""


def _reachable() -> dict[Status, frozenset[Status]]:
    following: dict[Status, set[Status]] = {}
    for (status, _), transition in TABLE.items():
        following.setdefault(status, set()).add(transition.to)
    reach: dict[Status, frozenset[Status]] = {}
    for start in Status:
        found, todo = {start}, [start]
        while todo:
            for later in following.get(todo.pop(), ()):
                if later not in found:
                    found.add(later)
                    todo.append(later)
        reach[start] = frozenset(found)
    return reach


REACHABLE = _reachable()
"""Status -> every status the lifecycle can lead to from it (itself included)."""


@dataclass(frozen=True, slots=True)
class Recent:
    """When a webhook's stamp is recent enough to make drift wait (rule 6): after `since`, and
    not after `until` (our now plus the clock skew we allow)."""

    since: datetime
    until: datetime

    def holds(self, at: datetime | None) -> bool:
        return at is not None and self.since < at <= self.until


def compare(
    ours: Subscription | None, theirs: Subscription, *, recent: Recent | None = None
) -> tuple[Finding, ...]:
    """Every drifted aspect of one subscription, each with its remedy (rules 1-3 and 6)."""
    if ours is None:
        return (Finding(theirs.id, FindingKind.MISSING_LOCALLY, Remedy.ADOPT, "", theirs.status.value),)
    drifted = [(kind, names) for kind, names in ASPECTS
               if any(getattr(ours, name) != getattr(theirs, name) for name in names)]
    remedy, detail = Remedy.REPAIR, ""
    stamped = None if recent is None else _set_within(ours, {kind for kind, _ in drifted}, recent)
    if theirs.status not in REACHABLE[ours.status]:
        remedy = Remedy.REPORT
        detail = f"{theirs.status.value} cannot follow our {ours.status.value}: left for a person"
    elif stamped is not None:
        aspect, at = stamped
        remedy, detail = Remedy.WAIT, (f"a webhook set our {aspect} at {at.isoformat()}, too recently to tell "
                                       "whether the list shows it yet: the next run decides")
    return tuple(Finding(ours.id, kind, remedy, _render(ours, names), _render(theirs, names), detail)
                 for kind, names in drifted)


def _set_within(ours: Subscription, kinds: set[FindingKind], recent: Recent) -> tuple[str, datetime] | None:
    """The first drifted aspect of ours stamped within `recent`, and its stamp (rule 6)."""
    for kind, aspect in _STAMPED.items():
        at = getattr(ours.changed_at, aspect)
        if kind in kinds and recent.holds(at):
            return aspect, at
    return None


def pending_since(ours: Subscription) -> datetime | None:
    """Since when our subscription waits for activation, if it does and we know when."""
    return waiting_since(ours.status, ours.changed_at.status, ours.last_operation_at)


def waiting_since(status: Status, status_changed_at: datetime | None,
                  last_operation_at: datetime | None) -> datetime | None:
    """`pending_since` from the fields it reads, for adapters that decode only those."""
    if status is not Status.PENDING_FULFILLMENT_START:
        return None
    return status_changed_at or last_operation_at


def stuck(subscription_id: str, status: Status, since: datetime | None, now: datetime,
          after: timedelta) -> Finding | None:
    """The marketplace's `status` still pending fulfilment start `after` we first saw it pending: never billed."""
    if status is not Status.PENDING_FULFILLMENT_START or since is None or now - since < after:
        return None
    hours = (now - since).total_seconds() / 3600
    detail = f"pending since {since.isoformat()} ({hours:.0f} h): never activated, so never billed"
    return Finding(subscription_id, FindingKind.STUCK_PENDING, Remedy.REPORT, status.value, status.value, detail)


def absent(ours: Subscription, *, confirmed: bool = True) -> Finding:
    """A subscription of ours the marketplace does not list (deleted test purchase? tombstone it)."""
    detail = "the marketplace does not know it" if confirmed else "not in the marketplace's list (not re-checked)"
    return Finding(ours.id, FindingKind.ABSENT_REMOTELY, Remedy.REPORT, ours.status.value, "", detail)


def outstanding(subscription_id: str, operations: Iterable[Operation]) -> tuple[Finding, ...]:
    """Operations that still wait for an answer (ours, or the marketplace's auto-accept)."""
    return tuple(
        Finding(subscription_id, FindingKind.OUTSTANDING_OPERATION, Remedy.REPORT, "", operation.status.value,
                f"{operation.action or 'operation'} {operation.id} since "
                f"{operation.timestamp.isoformat() if operation.timestamp else 'an unknown time'}")
        for operation in operations
        if operation.status in PENDING
    )


@dataclass(frozen=True, slots=True)
class Repair:
    """The state a repair writes and the history entry that explains it."""

    state: Subscription
    entry: HistoryEntry


def plan_repair(
    ours: Subscription | None,
    theirs: Subscription,
    *,
    run_id: str,
    now: datetime,
    seen: datetime,
    recent: Recent | None = None,
) -> Repair | None:
    """The repair of one subscription from the truth, or None when nothing is to change (rules 2-6).

    `seen` is a time no later than when `theirs` was read, on the marketplace's clock as
    far as we can tell; it stamps the repaired aspects. `recent` is as in `compare`.
    """
    findings = compare(ours, theirs, recent=recent)
    if not findings or any(finding.remedy in (Remedy.REPORT, Remedy.WAIT) for finding in findings):
        return None
    kinds = {finding.kind for finding in findings}
    state = _repaired(ours, theirs, kinds, seen)
    extra = () if ours is None else tuple(
        FieldChange(name, str(getattr(ours, name)), str(getattr(state, name)))
        for name in ("name", "publisher_id", "is_test", "sandbox_type")
        if getattr(ours, name) != getattr(state, name)
    )
    entry = HistoryEntry(
        subscription_id=theirs.id,
        operation_id=f"reconcile:{run_id}",
        action=_action(ours, theirs, kinds),
        source=Source.RECONCILIATION,
        outcome=Outcome.RESYNCED,
        recorded_at=now,
        changes=diff(ours, state) + extra,
        reason="reconciliation: " + ", ".join(f.kind.value for f in findings),
    )
    return Repair(state, entry)


def _repaired(ours: Subscription | None, theirs: Subscription, kinds: set[FindingKind], seen: datetime) -> Subscription:
    if ours is None:
        return replace(theirs, changed_at=ChangeTimes(status=seen, plan=seen, quantity=seen, term=seen))
    times = {aspect: getattr(ours.changed_at, aspect) for aspect in _STAMPED.values()}
    for kind in kinds & _STAMPED.keys():
        known = times[_STAMPED[kind]]
        times[_STAMPED[kind]] = seen if known is None else max(known, seen)  # never lowered
    return replace(theirs, last_operation_id=ours.last_operation_id, last_operation_at=ours.last_operation_at,
                   changed_at=ChangeTimes(**times))


def _action(ours: Subscription | None, theirs: Subscription, kinds: set[FindingKind]) -> Action:
    """The action that best explains the drift, for the history reader; Unknown when none does."""
    if ours is not None and FindingKind.STATUS in kinds:
        return next((action for (status, action), transition in TABLE.items()
                     if status is ours.status and transition.to is theirs.status), Action.UNKNOWN)
    for kind, action in ((FindingKind.PLAN, Action.CHANGE_PLAN), (FindingKind.QUANTITY, Action.CHANGE_QUANTITY),
                         (FindingKind.TERM, Action.RENEW)):
        if kind in kinds:
            return action
    return Action.UNKNOWN


def _render(subscription: Subscription, names: tuple[str, ...]) -> str:
    values = [_shown(getattr(subscription, name)) for name in names]
    if len(values) == 1:
        return values[0]
    return " ".join(f"{name}={value}" for name, value in zip(names, values, strict=True))


def _shown(value: object) -> str:
    """A value as a person reads it in a finding: a term as `P1M 2026-12-07..2027-01-07`, never a repr."""
    if value is None:
        return ""
    if isinstance(value, Term):
        dates = "" if value.start is None and value.end is None else (
            f" {value.start.isoformat() if value.start else '?'}..{value.end.isoformat() if value.end else '?'}")
        return f"{value.unit or '?'}{dates}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
