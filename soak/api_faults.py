"""Fulfillment API faults at random, through the sandbox's fault queue, and a count of those that hit.

An injected fault waits for the next matching API call, whoever makes it: the webhook
judging a change (then our answer must be a 503, never a 4xx) or a processor verifying,
acknowledging or reading the truth.

Dice alone may leave a kind out of a short run, and a run that claims to have met every
fault must have; so by the `EACH_KIND_BY`-th event every kind the rates allow has been
queued at least once, whatever the dice said.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable

from lifecycle.sandbox import Marketplace
from soak.config import FaultRates

OPERATION_PATCH = "/operations/"
EACH_KIND_BY = 20


class ApiFaults:
    def __init__(self, marketplace: Marketplace, rng: random.Random, rates: FaultRates, *,
                 api_timeout: float, window_wall_seconds: float) -> None:
        self._market = marketplace
        self._rng = rng
        self._timeout = api_timeout
        self._window = window_wall_seconds
        self._rolls = 0
        self.queued: Counter[str] = Counter()
        self._kinds: list[tuple[str, float, Callable[[], None]]] = [
            ("api_5xx", rates.api_5xx, self._server_error),
            ("api_429", rates.api_429, self._throttled),
            ("api_timeout", rates.api_timeout, self._timed_out),
            ("api_slow_past_window", rates.slow_past_window, self._past_window),
        ]

    def roll(self) -> None:
        """Maybe queue faults for the next calls (once per generated event)."""
        self._rolls += 1
        for kind, rate, inject in self._kinds:
            hit = self._rng.random() < rate
            if hit or (self._rolls == EACH_KIND_BY and rate > 0 and not self.queued[kind]):
                inject()
                self.queued[kind] += 1

    def _server_error(self) -> None:
        self._market.inject(status=self._rng.choice([500, 502, 503]))

    def _throttled(self) -> None:
        self._market.inject(status=429, retry_after=1)

    def _timed_out(self) -> None:
        self._market.inject(delay=self._timeout + 0.5)  # then served: the client has gone, its retry has not

    def _past_window(self) -> None:
        # Three attempts of one PATCH stalled past the client's timeout: by the time one gets
        # through, the marketplace's 10-second window has passed and the change auto-accepted.
        self._market.inject(delay=max(self._window, self._timeout) + 0.5, method="PATCH", path=OPERATION_PATCH,
                            times=3)

    def hits(self) -> Counter[str]:
        """Faults that hit a call, by kind."""
        kinds: Counter[str] = Counter()
        for method, _, fault in self._market.faults.applied:
            if fault.status == 429:
                kinds["api_429"] += 1
            elif fault.status is not None:
                kinds["api_5xx"] += 1
            elif method == "PATCH" and fault.path == OPERATION_PATCH:
                kinds["api_slow_past_window"] += 1
            else:
                kinds["api_timeout"] += 1
        return kinds
