"""Drains the outbox: each subscription's events in order, each retried with backoff until a 2xx.

A failing event holds back the later events of its subscription (the product must never
see "unsubscribed" before "suspended"), while other subscriptions carry on. Retries wait
`first_retry` seconds, doubling up to `max_retry`; the row shows attempts, the last error
and the next attempt (`lifecycle product pending`).

Runs as a thread in the local stack (`DispatcherThread`, woken right after each write)
and as a timer function in Azure (one `dispatch()` a minute).
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from lifecycle.errors import TransientError
from lifecycle.logs import get_logger
from lifecycle.ports import Clock
from lifecycle.product.outbox import OutboxEntry, TableOutbox
from lifecycle.product.sender import DeliveryFailed


class Sender(Protocol):
    def send(self, event_id: str, body: str) -> None:
        """Deliver or raise DeliveryFailed."""
        ...


@dataclass(frozen=True, slots=True)
class DispatchReport:
    delivered: int = 0
    failed: int = 0
    waiting: int = 0  # not due yet, or behind a failing event of the same subscription


class Dispatcher:
    def __init__(self, outbox: TableOutbox, sender: Sender, clock: Clock, *,
                 first_retry: float = 5.0, max_retry: float = 600.0) -> None:
        self._outbox = outbox
        self._sender = sender
        self._clock = clock
        self._first = min(first_retry, max_retry)
        self._max = max_retry
        self._log = get_logger("lifecycle.product")

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failure: first_retry, doubling, capped at max_retry."""
        return timedelta(seconds=min(self._first * 2 ** max(attempts - 1, 0), self._max))

    def dispatch(self) -> DispatchReport:
        """One pass over every pending event."""
        delivered = failed = waiting = 0
        pending = sorted(self._outbox.pending(), key=lambda e: (e.subscription_id, e.sequence))
        for _, events in itertools.groupby(pending, key=lambda e: e.subscription_id):
            queue = list(events)
            for position, entry in enumerate(queue):
                result = self._send(entry)
                if result == "delivered":
                    delivered += 1
                    continue
                failed += result == "failed"
                waiting += len(queue) - position - (result == "failed")
                break  # the later events of this subscription wait for this one
        return DispatchReport(delivered, failed, waiting)

    def _send(self, entry: OutboxEntry) -> str:
        """Try one event if it is due: "delivered", "failed" or "not_due"."""
        if entry.next_attempt_at is not None and entry.next_attempt_at > self._clock.now():
            return "not_due"
        log = self._log.bind(subscription_id=entry.subscription_id, event_id=entry.event_id, type=entry.type)
        try:
            self._sender.send(entry.event_id, entry.body)
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
