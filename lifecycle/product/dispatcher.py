"""Drains the outbox: each subscription's events in order, each retried with backoff until a 2xx.

A failing event holds back the later events of its subscription (the product must never
see "unsubscribed" before "suspended"), while other subscriptions carry on. Retries wait
`first_retry` seconds, doubling up to `max_retry`; the row shows attempts, the last error
and the next attempt (`lifecycle product pending`).

A pass (`dispatch`) reads only the subscriptions listed as having pending events, and
releases each listing once its backlog is delivered. `dispatch_subscription` sends one
subscription's backlog within a time budget (Azure's try right after a write; it leaves
the listing for the next pass). Two dispatchers may meet on one subscription (the timer
and that try): an event may then go out twice (delivery is at least once), but a later
event is first sent only after an earlier one was acknowledged, so order holds.

Runs as a thread in the local stack (`DispatcherThread`, woken right after each write)
and as a timer function in Azure (one `dispatch()` a minute).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from lifecycle.errors import ConcurrencyConflict, TransientError
from lifecycle.logs import get_logger
from lifecycle.ports import Clock
from lifecycle.product.backlog import Outbox, OutboxEntry
from lifecycle.product.sender import DeliveryFailed


class Sender(Protocol):
    def send(self, event_id: str, body: str, *, timeout: float | None = None) -> None:
        """Deliver within `timeout` seconds (None: the sender's own) or raise DeliveryFailed."""
        ...


@dataclass(frozen=True, slots=True)
class DispatchReport:
    delivered: int = 0
    failed: int = 0
    waiting: int = 0  # not due yet, behind a failing event of the same subscription, or out of budget

    def __add__(self, other: DispatchReport) -> DispatchReport:
        return DispatchReport(self.delivered + other.delivered, self.failed + other.failed,
                              self.waiting + other.waiting)


class Dispatcher:
    def __init__(self, outbox: Outbox, sender: Sender, clock: Clock, *, first_retry: float = 5.0,
                 max_retry: float = 600.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._outbox = outbox
        self._sender = sender
        self._clock = clock
        self._first = min(first_retry, max_retry)
        self._max = max_retry
        self._monotonic = monotonic  # the time budget's clock, an input so tests can step it
        self._log = get_logger("lifecycle.product")

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failure: first_retry, doubling, capped at max_retry."""
        return timedelta(seconds=min(self._first * 2 ** max(attempts - 1, 0), self._max))

    def dispatch(self) -> DispatchReport:
        """One pass over every listed subscription; each one fully delivered is unlisted."""
        total = DispatchReport()
        for listing in self._outbox.listings():
            backlog = self._outbox.backlog(listing.subscription_id)
            report = self._drain(backlog.entries, deadline=None)
            if report == DispatchReport(delivered=len(backlog.entries)):
                self._outbox.release(listing, backlog)  # False: written meanwhile, the next pass sees it
            total += report
        return total

    def dispatch_subscription(self, subscription_id: str, *, budget_seconds: float) -> DispatchReport:
        """Send one subscription's due events in order until `budget_seconds` are spent."""
        deadline = self._monotonic() + budget_seconds
        return self._drain(self._outbox.backlog(subscription_id).entries, deadline=deadline)

    def _drain(self, entries: Sequence[OutboxEntry], *, deadline: float | None) -> DispatchReport:
        for position, entry in enumerate(entries):
            remaining = None if deadline is None else deadline - self._monotonic()
            if remaining is not None and remaining <= 0:
                return DispatchReport(delivered=position, waiting=len(entries) - position)
            try:
                result = self._send(entry, timeout=remaining)
            except ConcurrencyConflict:  # another dispatcher updated this row: it carries on with them
                return DispatchReport(delivered=position, waiting=len(entries) - position)
            if result != "delivered":  # the later events of this subscription wait for this one
                failed = int(result == "failed")
                return DispatchReport(position, failed, len(entries) - position - failed)
        return DispatchReport(delivered=len(entries))

    def _send(self, entry: OutboxEntry, *, timeout: float | None) -> str:
        """Try one event if it is due: "delivered", "failed" or "not_due"."""
        if entry.next_attempt_at is not None and entry.next_attempt_at > self._clock.now():
            return "not_due"
        log = self._log.bind(subscription_id=entry.subscription_id, event_id=entry.event_id, type=entry.type)
        try:
            self._sender.send(entry.event_id, entry.body, timeout=timeout)
        except DeliveryFailed as error:
            retry_at = self._clock.now() + self.backoff(entry.attempts + 1)
            self._outbox.mark_failed(entry, str(error), retry_at)
            log.warning("product.delivery_failed", attempts=entry.attempts + 1, reason=str(error),
                        next_attempt_at=retry_at.isoformat())
            return "failed"
        self._outbox.mark_delivered(entry)
        log.info("product.delivered", attempts=entry.attempts + 1)
        return "delivered"


class DispatcherThread:
    """The local stack's dispatcher: a pass every `interval` seconds, or at once when nudged."""

    def __init__(self, dispatcher: Dispatcher, *, interval: float = 1.0) -> None:
        self._dispatcher = dispatcher
        self._interval = interval
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="product-dispatcher", daemon=True)
        self._log = get_logger("lifecycle.product")

    def start(self) -> DispatcherThread:
        self._thread.start()
        return self

    def nudge(self, subscription_id: str = "") -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                self._dispatcher.dispatch()
            except TransientError as error:  # storage down: the next pass tries again
                self._log.warning("product.dispatch_failed", error_type=type(error).__name__, reason=str(error))
            except Exception as error:  # a bug must not end the thread silently
                self._log.error("product.dispatch_crashed", error_type=type(error).__name__)
