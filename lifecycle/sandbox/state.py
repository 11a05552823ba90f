"""The marketplace's state and everything that only reads or records it.

`MarketplaceState` owns the one re-entrant lock, the subscriptions, the landing-page
tokens and the operations book, and settles what time has decided (auto-accepts,
lagging activations) at the start of every call. `Marketplace` adds the commands.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from lifecycle.sandbox import catalog, subscriptions, tokens
from lifecycle.sandbox.clock import Clock, SystemClock
from lifecycle.sandbox.errors import not_found
from lifecycle.sandbox.faults import Fault, FaultQueue
from lifecycle.sandbox.operations import OperationBook
from lifecycle.sandbox.records import DeliveryAttempt, Json, OperationRecord

Notifier = Callable[[str], Any]
"""Called with an operation id, outside the lock, when its webhook should go out."""


class MarketplaceState:
    """In-memory truth plus its queries; thread-safe, time from an injectable clock."""

    def __init__(
        self,
        *,
        publisher_id: str = "contoso",
        auto_accept_seconds: float | None = 10.0,
        page_size: int = 100,
        activation_delay_seconds: float = 0.0,
        token_ttl_seconds: float = 24 * 3600.0,
        clock: Clock | None = None,
    ) -> None:
        self.publisher_id = publisher_id
        self.clock: Clock = clock or SystemClock()
        self.page_size = page_size
        self.activation_delay_seconds = activation_delay_seconds
        self.token_ttl_seconds = token_ttl_seconds  # landing-page tokens live 24 h at Microsoft
        self.faults = FaultQueue()
        self.notifier: Notifier | None = None
        self._lock = threading.RLock()
        self._delivered = threading.Condition(self._lock)  # a webhook attempt got its answer
        # How long a PATCH waits for its operation's webhook response before it counts as early.
        self.protocol_grace_seconds = 0.5
        self._subscriptions: dict[str, Json] = {}  # insertion order is the list order
        self._tokens: dict[str, tuple[str, datetime]] = {}
        self._activations: dict[str, datetime] = {}  # accepted, not yet visible
        self._book = OperationBook(self._apply, auto_accept_seconds)

    @property
    def auto_accept_seconds(self) -> float | None:
        return self._book.auto_accept_seconds

    @auto_accept_seconds.setter
    def auto_accept_seconds(self, seconds: float | None) -> None:
        with self._lock:
            self._book.auto_accept_seconds = seconds

    # -- the Fulfillment API's reads -------------------------------------------------

    def get(self, subscription_id: str) -> Json:
        with self._lock:
            self._settle()
            return copy.deepcopy(self._get(subscription_id))

    def list_page(self, continuation: str | None = None) -> tuple[list[Json], str | None]:
        """One page of every subscription (all statuses), and the next page's token or None."""
        with self._lock:
            self._settle()
            start = tokens.offset(continuation)
            items = list(self._subscriptions.values())
            page = items[start : start + self.page_size]
            end = start + len(page)
            return copy.deepcopy(page), (tokens.continuation(end) if end < len(items) else None)

    def list_available_plans(self, subscription_id: str) -> list[Json]:
        with self._lock:
            self._settle()
            return catalog.plans(self._get(subscription_id)["offerId"])

    def operations(self, subscription_id: str) -> list[Json]:
        """The subscription's outstanding (InProgress) operations."""
        with self._lock:
            self._settle()
            self._get(subscription_id)
            return self._book.outstanding(subscription_id)

    def get_operation(self, subscription_id: str, operation_id: str) -> Json:
        with self._lock:
            self._settle()
            self._get(subscription_id)
            return self._book.find(subscription_id, operation_id).copy()

    # -- webhook bookkeeping (called by the sender) ----------------------------------

    def webhook_payload(self, operation_id: str) -> Json:
        with self._lock:
            return copy.deepcopy(self._book.entry(operation_id).payload)

    def delivery_started(self, operation_id: str) -> Json:
        """The sender is about to POST this operation's webhook: the payload to send."""
        with self._lock:
            return self._book.delivery_started(operation_id, self._settle())

    def delivery_finished(self, operation_id: str, status: int | None, elapsed: float, error: str = "") -> None:
        """One attempt's outcome; a 4xx on a ChangePlan/ChangeQuantity rejects it."""
        with self._lock:
            now = self._settle()
            self._book.delivery_finished(operation_id, DeliveryAttempt(status, elapsed, now, error))
            self._delivered.notify_all()

    # -- what happened ---------------------------------------------------------------

    def record(self, operation_id: str) -> OperationRecord:
        with self._lock:
            self._settle()
            return self._book.entry(operation_id).snapshot()

    def records(self) -> list[OperationRecord]:
        with self._lock:
            self._settle()
            return self._book.records()

    def protocol_errors(self) -> list[str]:
        """Every protocol error flagged so far, prefixed with its operation id."""
        return [f"{r.operation_id}: {e}" for r in self.records() for e in r.protocol_errors]

    def subscription_ids(self) -> list[str]:
        with self._lock:
            return list(self._subscriptions)

    # -- faults and time -------------------------------------------------------------

    def inject(
        self,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        delay: float = 0.0,
        times: int = 1,
        path: str | None = None,
        method: str | None = None,
        body: str | None = None,
    ) -> Fault:
        """Make the next `times` matching API calls fail and/or stall (see `faults`)."""
        fault = Fault(status=status, retry_after=retry_after, delay=delay, path=path, method=method, body=body)
        self.faults.inject(fault, times)
        return fault

    def settle(self) -> None:
        """Apply whatever time has decided; every call does this first anyway."""
        with self._lock:
            self._settle()

    def _settle(self) -> datetime:
        now = self.clock.now()
        for subscription_id, due in list(self._activations.items()):
            if due <= now:
                del self._activations[subscription_id]
                self._complete_activation(self._subscriptions[subscription_id], due)
        self._book.settle(now)
        return now

    def _get(self, subscription_id: str) -> Json:
        try:
            return self._subscriptions[subscription_id]
        except KeyError:
            raise not_found(f"Subscription {subscription_id} not found", "subscriptionId") from None

    def _complete_activation(self, subscription: Json, now: datetime) -> None:
        if subscription["saasSubscriptionStatus"] == "PendingFulfillmentStart":
            subscription["saasSubscriptionStatus"] = "Subscribed"
            subscriptions.start_term(subscription, now)

    def _apply(self, operation: Json, now: datetime) -> str | None:
        subscription = self._subscriptions.get(str(operation["subscriptionId"]))
        if subscription is None:
            return "The subscription no longer exists"
        return subscriptions.apply_operation(subscription, operation, now)
