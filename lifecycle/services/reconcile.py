"""Reconciliation: make our table agree with the marketplace's list, and report what it must not fix.

    run(dry_run, progress) -> RunRecord
      1 take the lease row (a real run only: a dry run changes nothing, so it may overlap one)
      2 record the run as running
      3 index our side, walk the marketplace's pages against it, examine suspects and repair
        the safe ones, then examine what only we know (`reconcile_scan`, `reconcile_repair`)
      4 record the run as succeeded or failed with everything it counted; give the lease back

Which drift is repaired and which is only reported is the domain's rule (lifecycle.domain.
reconcile). A run that cannot finish (a page still failing after its retries, storage down,
the lease lost) is recorded as failed with what it did so far; each repair it made was one
whole commit, so nothing is left half-done. A dry run takes every step but the commits, and
each finding says what a real run would do.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from lifecycle.domain.reconcile import Finding
from lifecycle.domain.reconcile_runs import RunRecord, RunStatus, Tombstone
from lifecycle.errors import LifecycleError, TransientError
from lifecycle.logs import get_logger
from lifecycle.ports import Clock, MarketplaceApi, Product, SubscriptionStore
from lifecycle.retry import RetryPolicy
from lifecycle.services.reconcile_read import read_all
from lifecycle.services.reconcile_repair import SETTLE, Examiner
from lifecycle.services.reconcile_scan import Tally, Walk

LEASE_NAME = "reconcile"
LEASE_TTL = timedelta(minutes=30)  # host.json's functionTimeout: a killed run's lease is free within one tick
PAGE_RETRY = RetryPolicy(max_attempts=4, base_delay=2.0, max_delay=30.0)


class RunInProgress(LifecycleError):
    """Another run holds the reconcile lease: this one did not start (nothing was recorded)."""


class LeaseLost(TransientError):
    """The run could not renew its lease (it stalled past the lease's life): it stops."""


class OutOfTime(TransientError):
    """The run used up the time it was given (the Functions host's timeout, less room to record
    it): it stops between pages and is recorded as failed, where being killed would leave it
    recorded as running."""

    @staticmethod
    def ended(run: RunRecord) -> bool:
        """Whether `run` stopped for want of time (the record keeps the error as text)."""
        return run.status is RunStatus.FAILED and run.error.startswith(f"{OutOfTime.__name__}:")


@dataclass(frozen=True, slots=True, kw_only=True)
class ReconcileProgress:
    """Where a run is: `phase` is index, listing, absent or done; `findings` are the new ones since the last call."""

    run_id: str
    phase: str
    pages: int
    listed: int
    known: int
    findings: tuple[Finding, ...] = ()


Progress = Callable[[ReconcileProgress], None]


class ReconcileService:
    """Runs reconciliation, keeps its run records, and manages tombstones."""

    def __init__(
        self,
        store: SubscriptionStore,
        api: MarketplaceApi,
        clock: Clock,
        *,
        product: Product | None = None,
        stuck_after: timedelta = timedelta(hours=24),
        settle: timedelta = SETTLE,
        all_operations: bool = False,  # every active subscription's outstanding operations, not the drifted's
        workers: int = 8,
        page_retry: RetryPolicy = PAGE_RETRY,
        lease_ttl: timedelta = LEASE_TTL,
    ) -> None:
        self._store, self._api, self._clock, self._product = store, api, clock, product
        self._stuck_after = stuck_after
        self._settle = settle
        self._all_operations = all_operations
        self._workers = workers
        self._page_retry = page_retry
        self._lease_ttl = lease_ttl
        self._log = get_logger("lifecycle.reconcile")

    def run(self, *, dry_run: bool = False, progress: Progress | None = None,
            budget: timedelta | None = None) -> RunRecord:
        """One reconciliation; RunInProgress if another real run holds the lease.

        Returns the run's record, FAILED when it could not finish (the reason is in `error`).
        An unexpected exception (a bug) is recorded too, then raised. With a `budget`, a run
        still going after it stops at the next page boundary, failed with OutOfTime.
        """
        run = RunRecord(run_id=str(uuid.uuid4()), started_at=self._clock.now(), dry_run=dry_run)
        log = self._log.bind(run_id=run.run_id, dry_run=dry_run)
        renewed = run.started_at
        if not dry_run and not self._lease(run.run_id, renewed):
            log.warning("reconcile.refused", reason="another run holds the lease")
            raise RunInProgress(f"another reconcile run holds the lease {LEASE_NAME!r}; it expires within "
                                f"{self._lease_ttl} of its last renewal")
        tally = Tally()

        def report(phase: str, findings: tuple[Finding, ...]) -> None:
            for finding in findings:
                log.info("reconcile.finding", subscription_id=finding.subscription_id, kind=finding.kind.value,
                         remedy=finding.remedy.value, ours=finding.ours, theirs=finding.theirs, detail=finding.detail)
            if progress is not None:
                progress(ReconcileProgress(run_id=run.run_id, phase=phase, pages=tally.pages, listed=tally.listed,
                                           known=tally.known, findings=findings))

        def checkpoint() -> None:
            """Between pages: stop when out of time, renew the lease when a third of its life is gone."""
            nonlocal renewed
            now = self._clock.now()
            if budget is not None and now - run.started_at > budget:
                raise OutOfTime(f"still going after {budget} ({tally.pages} pages read): stopped, to be recorded "
                                "before the host's timeout; too many subscriptions for one run in that time")
            if dry_run or now - renewed < self._lease_ttl / 3:
                return
            if not self._lease(run.run_id, now):
                raise LeaseLost("the reconcile lease was taken over: this run stalled past its life")
            renewed = now

        log.info("reconcile.started")
        try:
            self._store.save_run(run)
            with ThreadPoolExecutor(self._workers, thread_name_prefix="reconcile") as pool:
                examiner = Examiner(self._store, self._api, self._clock, self._product, log, run_id=run.run_id,
                                    dry_run=dry_run, stuck_after=self._stuck_after, settle=self._settle,
                                    all_operations=self._all_operations)
                walk = Walk(api=self._api, clock=self._clock, examiner=examiner, tally=tally, pool=pool,
                            retry=self._page_retry, stuck_after=self._stuck_after, all_operations=self._all_operations,
                            report=report, checkpoint=checkpoint, log=log)
                tombstoned = {tombstone.subscription_id for tombstone in self._store.tombstones()}
                walk.run(read_all(self._store), tombstoned)
        except LifecycleError as failure:
            return self._finish(tally.record(run, status=RunStatus.FAILED, finished_at=self._clock.now(),
                                             error=f"{type(failure).__name__}: {failure}"), log, report)
        except BaseException as failure:
            self._finish(tally.record(run, status=RunStatus.FAILED, finished_at=self._clock.now(),
                                      error=f"unexpected {type(failure).__name__}: {failure}"), log, report)
            raise
        return self._finish(tally.record(run, status=RunStatus.SUCCEEDED, finished_at=self._clock.now()), log, report)

    def runs(self, limit: int = 10) -> list[RunRecord]:
        """The last `limit` runs, newest first."""
        return self._store.runs(limit)

    def tombstone(self, subscription_id: str, reason: str = "") -> Tombstone:
        """Leave `subscription_id` alone from now on (a test purchase deleted on purpose)."""
        tombstone = Tombstone(subscription_id=subscription_id, reason=reason, created_at=self._clock.now())
        self._store.tombstone(tombstone)
        return tombstone

    def untombstone(self, subscription_id: str) -> None:
        self._store.untombstone(subscription_id)

    def tombstones(self) -> list[Tombstone]:
        return list(self._store.tombstones())

    def _lease(self, owner: str, now: datetime) -> bool:
        return self._store.acquire_lease(LEASE_NAME, owner, now=now, ttl=self._lease_ttl)

    def _finish(self, run: RunRecord, log: Any, report: Callable[[str, tuple[Finding, ...]], None]) -> RunRecord:
        """Record the run's end and free the lease; storage failing here only costs the record."""
        try:
            self._store.save_run(run)
        except LifecycleError as error:
            log.error("reconcile.record_failed", error_type=type(error).__name__, reason=str(error))
        if not run.dry_run:
            try:
                self._store.release_lease(LEASE_NAME, run.run_id)
            except LifecycleError as error:  # it expires on its own
                log.warning("reconcile.release_failed", error_type=type(error).__name__)
        level = log.info if run.status is RunStatus.SUCCEEDED else log.error
        level("reconcile.finished", status=run.status.value, pages=run.pages, listed=run.listed, known=run.known,
              repaired=run.repaired, errors=run.errors, error=run.error,
              counts={kind.value: count for kind, count in run.counts.items()})
        report("done", ())
        return run
