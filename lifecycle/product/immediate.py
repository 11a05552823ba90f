"""ImmediateDispatch: in Azure, try a subscription's pending events right after one is written.

The timer sends every minute; this makes the product hear within seconds. It runs on the
marketplace path (after processing's commit, inside activation and reconciliation), so it
is bounded and can never fail that path: one try of that subscription's due events within
`budget_seconds`, every error logged and swallowed (the event stays in the outbox for the
timer). After a delivery or a try fails, tries pause for `pause_seconds`, so a product that is down
costs the marketplace path nothing more than the first timeout.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from lifecycle.logs import get_logger
from lifecycle.product.dispatcher import Dispatcher

_UNBUILT = object()


class ImmediateDispatch:
    """`on_written` for TableOutbox: `dispatcher` is built on first use (None: no product)."""

    def __init__(self, dispatcher: Callable[[], Dispatcher | None], *, budget_seconds: float = 2.0,
                 pause_seconds: float = 30.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._build = dispatcher
        self._dispatcher: object = _UNBUILT
        self._building = threading.Lock()
        self._budget = budget_seconds
        self._pause = pause_seconds
        self._monotonic = monotonic
        self._paused_until = 0.0
        self._log = get_logger("lifecycle.product")

    def __call__(self, subscription_id: str) -> None:
        if self._monotonic() < self._paused_until:
            return
        try:
            dispatcher = self._get()
            if dispatcher is None:
                return
            report = dispatcher.dispatch_subscription(subscription_id, budget_seconds=self._budget)
        except Exception as error:  # storage, settings or a bug: the timer is the safety net
            self._log.warning("product.immediate_dispatch_failed", subscription_id=subscription_id,
                              error_type=type(error).__name__)
            self._paused_until = self._monotonic() + self._pause
            return
        if report.failed:
            self._paused_until = self._monotonic() + self._pause

    def _get(self) -> Dispatcher | None:
        if self._dispatcher is _UNBUILT:
            with self._building:
                if self._dispatcher is _UNBUILT:
                    self._dispatcher = self._build()
        return self._dispatcher if isinstance(self._dispatcher, Dispatcher) else None
