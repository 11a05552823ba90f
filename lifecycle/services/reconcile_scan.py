"""One run's comparison of two unsorted streams: our table's rows and the marketplace's pages.

Our table is read shard by shard on several threads (`reconcile_read`), the marketplace
lists in purchase order, and neither can be asked for the other's order. So our side is
first reduced to what the comparison needs: subscription id -> fingerprint of the compared
fields (an int, where the subscription itself would take kilobytes), plus the pending-since
time of our pending ones. Each marketplace page is then compared against that index and
forgotten. Both sides come fingerprinted from their raw fields (`Fingerprinted`, `Listed`);
only a suspect's listed item is parsed whole, since a domain value built for every row and
every item was most of a run's own CPU. An id is marked seen rather than removed, so a
listing restarted after a failing page skips what is done; whatever is still unseen at the
end is what only we know. Suspects (a fingerprint that differs, an id we lack) go to the
Examiner on a few threads while the paging goes on, at most IN_FLIGHT at a time. Point
reads per listed subscription instead of an index lose by far (bench/reconcile.py).
Building the index while already paging, parking what cannot be judged yet, was tried and
dropped: on the benchmark it was slower, as parked suspects need their truth read again,
and against the real API the scan is a small share.
"""

from __future__ import annotations

import contextlib
import itertools
from collections import Counter, deque
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Final

from lifecycle.domain.fingerprint import Fingerprinted, ListItem, Unreadable
from lifecycle.domain.reconcile import Finding, FindingKind, stuck
from lifecycle.domain.reconcile_runs import RunRecord
from lifecycle.errors import MarketplaceUnavailable, TransientError
from lifecycle.ports import Clock, MarketplaceApi
from lifecycle.retry import RetryPolicy
from lifecycle.services.reconcile_repair import ACTIVE, Examined, Examiner

SEEN: Final = object()
CONFIRM_LIMIT = 1000  # absent ones re-checked one by one; beyond this a broken list would cost a call each
SAMPLE_SIZE, PROBLEMS_KEPT, MAX_PROBLEMS_IN_A_ROW = 50, 20, 25
IN_FLIGHT = 32  # examinations running beside the paging: bounds memory, keeps the threads busy


class TooManyProblems(TransientError):
    """Subscription after subscription fails: the API or storage is down, stop rather than grind on."""


class LocalIndex:
    """Our side of the comparison: id -> fingerprint (SEEN once the marketplace listed it)."""

    def __init__(self, subscriptions: Iterable[Fingerprinted], skip: Collection[str]) -> None:
        self._marks: dict[str, object] = {}
        self.pending: dict[str, datetime] = {}  # our pending ones: few, and needed for "stuck"
        self.skipped: set[str] = set()
        for ours in subscriptions:
            if ours.id in skip:
                self.skipped.add(ours.id)
                continue
            self._marks[ours.id] = ours.fingerprint
            if ours.pending_since is not None:
                self.pending[ours.id] = ours.pending_since
        self.known = len(self._marks)

    def claim(self, subscription_id: str) -> object:
        """Mark the id seen; what we had for it: its fingerprint, None (not ours) or SEEN (done already)."""
        mark = self._marks.get(subscription_id)
        self._marks[subscription_id] = SEEN
        return mark

    def unseen(self) -> list[str]:
        return [sid for sid, mark in self._marks.items() if mark is not SEEN]


def listing(api: MarketplaceApi, retry: RetryPolicy, log: Any) -> Iterator[tuple[int, list[ListItem]]]:
    """(page number, page) of the marketplace's list, with a failing page retried.

    The client has already retried each request. A page still failing restarts the listing
    (the port cannot resume mid-way; re-read pages repeat ids the index marks SEEN), after a
    back-off; `retry.max_attempts` failures without getting further fail the run.
    """
    failures = furthest = 0
    while True:
        pages = iter(api.list_subscriptions())
        for number in itertools.count(1):
            try:
                page = next(pages)
            except StopIteration:
                return
            except MarketplaceUnavailable as error:
                failures += 1
                if failures >= retry.max_attempts:
                    raise
                log.warning("reconcile.page_retry", page=number, attempt=failures, reason=str(error))
                retry.pause(retry.delay(failures))
                break
            if number > furthest:
                furthest, failures = number, 0  # progress: the next failing page gets its own retries
            yield number, page


@dataclass
class Tally:
    """What a run has counted so far; updated by the run's own thread only."""

    pages: int = 0
    listed: int = 0
    known: int = 0
    skipped: int = 0
    repaired: int = 0
    errors: int = 0
    counts: Counter[FindingKind] = field(default_factory=Counter)
    sample: list[Finding] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    in_a_row: int = 0

    def add(self, examined: Examined) -> None:
        self.counts.update(finding.kind for finding in examined.findings)
        self.sample.extend(examined.findings[: SAMPLE_SIZE - len(self.sample)])
        self.repaired += examined.repaired
        if not examined.problem:
            self.in_a_row = 0
            return
        self.note(examined.problem)
        self.in_a_row += 1
        if self.in_a_row >= MAX_PROBLEMS_IN_A_ROW:
            raise TooManyProblems(f"{self.in_a_row} subscriptions failed in a row; last: {examined.problem}")

    def note(self, problem: str) -> None:
        """A problem that says nothing of the API's or storage's health (an item the list spells
        oddly): counted and kept, but no step towards giving the run up."""
        self.errors += 1
        if len(self.problems) < PROBLEMS_KEPT:
            self.problems.append(problem)

    def record(self, run: RunRecord, **changes: Any) -> RunRecord:
        return replace(run, pages=self.pages, listed=self.listed, known=self.known, skipped=self.skipped,
                       counts=dict(self.counts), repaired=self.repaired, errors=self.errors,
                       problems=tuple(self.problems), sample=tuple(self.sample), **changes)


Report = Callable[[str, tuple[Finding, ...]], None]
Job = Callable[[], Examined]


@dataclass(kw_only=True)
class Walk:
    """Index ours, walk the marketplace's pages against it, then examine what only we know."""

    api: MarketplaceApi
    clock: Clock
    examiner: Examiner
    tally: Tally
    pool: ThreadPoolExecutor
    retry: RetryPolicy
    stuck_after: timedelta
    all_operations: bool
    report: Report
    checkpoint: Callable[[], None]  # between pages: may raise to stop the run (lease lost, out of time)
    log: Any
    _in_flight: deque[Future[Examined]] = field(default_factory=deque, init=False)

    def run(self, ours: Iterable[Fingerprinted], tombstoned: Collection[str]) -> None:
        try:
            self._run(ours, tombstoned)
        except BaseException:
            self._settle()  # what already ran (repairs included) belongs in the failed run's record
            raise

    def _run(self, ours: Iterable[Fingerprinted], tombstoned: Collection[str]) -> None:
        index = LocalIndex(ours, tombstoned)
        self.tally.known, skipped = index.known, set(index.skipped)
        self.report("index", ())
        for number, page in listing(self.api, self.retry, self.log):
            self.tally.pages = max(self.tally.pages, number)
            jobs: list[Job] = []
            quick: list[Finding] = []
            for theirs in page:
                if theirs.id in tombstoned:
                    skipped.add(theirs.id)
                    continue
                jobs += self._sort(theirs, index, quick)
            self.report("listing", (*quick, *self._submit(jobs)))
            self.checkpoint()
        self.report("listing", self._collect(block=True))
        unseen = index.unseen()
        for start in range(0, len(unseen), 100):  # a page's worth at a time, a checkpoint between
            chunk = unseen[start : start + 100]
            jobs = [_job(self.examiner.absent, sid, confirm=start + n < CONFIRM_LIMIT) for n, sid in enumerate(chunk)]
            self.report("absent", (*self._submit(jobs), *self._collect(block=True)))
            self.checkpoint()
        self.tally.skipped = len(skipped)

    def _sort(self, theirs: ListItem, index: LocalIndex, quick: list[Finding]) -> list[Job]:
        """The jobs one listed subscription needs (none when it agrees with ours); findings made here go to `quick`."""
        mark = index.claim(theirs.id) if theirs.id else None
        if mark is SEEN:
            return []  # a page read again after a restart
        self.tally.listed += 1
        if isinstance(theirs, Unreadable):
            # Claimed all the same: ours is not "absent" because the list spelt it oddly.
            self.tally.note(f"{theirs.id or '(no id)'}: unreadable in the list: {theirs.reason}")
            return []
        if not isinstance(mark, int) or mark != theirs.fingerprint:
            known = mark if isinstance(mark, int) else None
            return [lambda: self.examiner.listed(theirs.parse(), known)]  # parsed on a worker, beside the paging
        if theirs.id in index.pending:
            late = stuck(theirs.id, theirs.status, index.pending[theirs.id], self.clock.now(), self.stuck_after)
            if late is not None:
                self.tally.add(Examined((late,)))
                quick.append(late)
        if self.all_operations and theirs.status in ACTIVE:
            return [_job(self.examiner.operations, theirs.id)]
        return []

    def _submit(self, jobs: list[Job]) -> tuple[Finding, ...]:
        """Start `jobs` beside the paging; what has finished so far, waiting only when too much is in flight."""
        self._in_flight.extend(self.pool.submit(job) for job in jobs)
        return self._collect(block=False)

    def _collect(self, *, block: bool) -> tuple[Finding, ...]:
        # Oldest first, so findings come out in listing order whatever the threads' timing.
        found: list[Finding] = []
        window = 0 if block else IN_FLIGHT
        while self._in_flight and (len(self._in_flight) > window or self._in_flight[0].done()):
            examined = self._in_flight.popleft().result()
            self.tally.add(examined)
            found += examined.findings
        return tuple(found)

    def _settle(self) -> None:
        for future in self._in_flight:
            with contextlib.suppress(Exception):  # the run is failing already: count, do not raise again
                self.tally.add(future.result())
        self._in_flight.clear()


def _job(method: Callable[..., Examined], *args: Any, **kwargs: Any) -> Job:
    return lambda: method(*args, **kwargs)
