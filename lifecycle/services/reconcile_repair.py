"""Examining one suspect subscription: read ours afresh, judge it against the truth, repair it.

A run's page scan only *suspects* drift (a fingerprint differed). Here our state row is read
with its ETag. If it moved since the scan, a webhook is at work and the page's copy of the
truth may be older than what that webhook applied, so the latest truth is fetched first. A
repair commits guarded by the ETag just read (a subscription that was not ours is created
unread: the create fails if it exists by then); a concurrent webhook makes the commit fail
whole, and both sides are read again and judged again: the newer truth wins, nothing is lost.

Errors of one subscription do not stop the run: they come back as its `problem`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from lifecycle.domain.fingerprint import fingerprint
from lifecycle.domain.history import ChangeKind
from lifecycle.domain.model import Status, Subscription
from lifecycle.domain.reconcile import (
    Finding,
    FindingKind,
    Recent,
    absent,
    compare,
    outstanding,
    pending_since,
    plan_repair,
    stuck,
)
from lifecycle.domain.records import Commit
from lifecycle.errors import ConcurrencyConflict, LifecycleError, MarketplaceNotFound
from lifecycle.ports import Clock, MarketplaceApi, Product, SubscriptionStore

SKEW_ALLOWANCE = timedelta(minutes=5)
"""How far our clock may run ahead of Microsoft's. A repair stamps its aspects this much
before our `now`, so a genuinely newer webhook is never taken for an old one."""

SETTLE = SKEW_ALLOWANCE
"""The default time a webhook's change is left to reach the marketplace's list: drift in an
aspect a webhook set more recently waits for the next run (rule 6 of `compare`). No longer
than SKEW_ALLOWANCE on purpose: a repair stamps `now - SKEW_ALLOWANCE`, so the aspects a run
repaired never make the next run wait. Settings' default (RECONCILE_SETTLE_SECONDS) is this."""

ACTIVE = frozenset({Status.SUBSCRIBED, Status.SUSPENDED})  # the only statuses with answerable operations
DRIFT = frozenset(FindingKind) - {FindingKind.ABSENT_REMOTELY, FindingKind.STUCK_PENDING,
                                  FindingKind.OUTSTANDING_OPERATION}


@dataclass(frozen=True, slots=True)
class Examined:
    """What examining one subscription found, whether its state was repaired, and what went wrong."""

    findings: tuple[Finding, ...] = ()
    repaired: bool = False
    problem: str = ""


class Examiner:
    """Judges and repairs one subscription at a time; safe to call from several threads."""

    def __init__(
        self,
        store: SubscriptionStore,
        api: MarketplaceApi,
        clock: Clock,
        product: Product | None,
        log: Any,
        *,
        run_id: str,
        dry_run: bool,
        stuck_after: timedelta,
        all_operations: bool,
        settle: timedelta = SETTLE,
        max_conflicts: int = 5,
    ) -> None:
        self._store, self._api, self._clock, self._product, self._log = store, api, clock, product, log
        self._run_id = run_id
        self._dry_run = dry_run
        self._stuck_after = stuck_after
        self._settle = settle
        self._all_operations = all_operations
        self._max_conflicts = max_conflicts

    def listed(self, theirs: Subscription, known: int | None) -> Examined:
        """A listed subscription whose fingerprint differs from `known`, ours in the scan (None: not ours)."""
        return self._guarded(theirs.id, lambda: self._listed(theirs, known))

    def absent(self, subscription_id: str, *, confirm: bool) -> Examined:
        """Ours, but not in the list: confirm with the API (the list may have missed a new purchase)."""
        return self._guarded(subscription_id, lambda: self._absent(subscription_id, confirm))

    def operations(self, subscription_id: str) -> Examined:
        """Only the outstanding operations of a subscription that agrees with ours."""
        findings, problem = self._outstanding(subscription_id)
        return Examined(findings, problem=problem)

    def _listed(self, theirs: Subscription, known: int | None) -> Examined:
        for attempt in range(1, self._max_conflicts + 1):
            # Not ours at the scan: create it unread; the create fails if it appeared meanwhile.
            snapshot = None if attempt == 1 and known is None else self._store.load(theirs.id)
            ours = None if snapshot is None else snapshot.subscription
            if attempt > 1 or _moved(ours, known):
                try:
                    theirs = self._api.get_subscription(theirs.id)
                except MarketplaceNotFound:
                    return Examined(() if ours is None else (absent(ours),))
            now = self._clock.now()
            seen = now - SKEW_ALLOWANCE
            recent = Recent(now - self._settle, now + SKEW_ALLOWANCE) if self._settle else None
            findings = compare(ours, theirs, recent=recent)
            if ours is not None:
                late = stuck(theirs.id, theirs.status, pending_since(ours), now, self._stuck_after)
                findings += () if late is None else (late,)
            repair = None
            if not self._dry_run:
                repair = plan_repair(ours, theirs, run_id=self._run_id, now=now, seen=seen, recent=recent)
            if repair is not None:
                try:
                    self._store.commit(Commit(subscription=repair.state, expected=snapshot, history=(repair.entry,)))
                except ConcurrencyConflict:
                    self._log.info("reconcile.conflict_retry", subscription_id=theirs.id, attempt=attempt)
                    continue
            untold = self._notify(repair.state) if repair is not None else ""
            operations: tuple[Finding, ...] = ()
            problem = ""
            if any(f.kind in DRIFT for f in findings) or (self._all_operations and theirs.status in ACTIVE):
                operations, problem = self._outstanding(theirs.id)
            problem = "; ".join(text for text in (untold, problem) if text)
            return Examined(findings + operations, repaired=repair is not None, problem=problem)
        raise ConcurrencyConflict(f"still changing after {self._max_conflicts} attempts")

    def _absent(self, subscription_id: str, confirm: bool) -> Examined:
        snapshot = self._store.load(subscription_id)
        if snapshot is None:
            return Examined()  # deleted here meanwhile: nothing left to compare
        if not confirm:
            return Examined((absent(snapshot.subscription, confirmed=False),))
        try:
            theirs = self._api.get_subscription(subscription_id)
        except MarketplaceNotFound:
            return Examined((absent(snapshot.subscription),))
        return self._listed(theirs, fingerprint(snapshot.subscription))  # bought while we paged: judge it

    def _outstanding(self, subscription_id: str) -> tuple[tuple[Finding, ...], str]:
        # A failure here must not hide a repair already made: it is reported beside it.
        try:
            return outstanding(subscription_id, self._api.list_operations(subscription_id)), ""
        except MarketplaceNotFound:
            return (), ""
        except LifecycleError as error:
            return (), self._problem(subscription_id, error)

    def _notify(self, state: Subscription) -> str:
        """Tell the product of a repair; a problem for the run's record when that failed.

        The repair stays committed (the run goes on), so a failure here is not retried by a
        later run, which finds no drift: the run's errors are where ops learn of it.
        """
        if self._product is None:
            return ""
        try:
            self._product.notify(ChangeKind.RESYNCED, state, operation_id=f"reconcile:{self._run_id}")
        except Exception as error:  # the product's outage must not stop the run, nor undo the repair
            self._log.warning("product.notify_failed", subscription_id=state.id, error_type=type(error).__name__)
            return f"{state.id}: repaired, but the product was not told ({type(error).__name__})"
        return ""

    def _guarded(self, subscription_id: str, work: Callable[[], Examined]) -> Examined:
        try:
            return work()
        except LifecycleError as error:
            return Examined(problem=self._problem(subscription_id, error))

    def _problem(self, subscription_id: str, error: LifecycleError) -> str:
        self._log.warning("reconcile.examine_failed", subscription_id=subscription_id,
                          error_type=type(error).__name__, reason=str(error))
        return f"{subscription_id}: {type(error).__name__}: {error}"


def _moved(ours: Subscription | None, known: int | None) -> bool:
    """Whether our row changed since the scan read it (created, deleted or rewritten)."""
    if ours is None or known is None:
        return (ours is None) != (known is None)
    return fingerprint(ours) != known
