"""Fulfillment API faults at random, through the sandbox's fault queue, and a count of those that hit.

An injected fault waits for the next matching API call, whoever makes it: the webhook
judging a change (then our answer must be a 503, never a 4xx) or a processor verifying,
acknowledging or reading the truth.
"""

from __future__ import annotations

import random
from collections import Counter

from lifecycle.sandbox import Marketplace
from soak.config import FaultRates

OPERATION_PATCH = "/operations/"


class ApiFaults:
    def __init__(self, marketplace: Marketplace, rng: random.Random, rates: FaultRates, *,
                 api_timeout: float, window_wall_seconds: float) -> None:
        self._market = marketplace
        self._rng = rng
        self._rates = rates
        self._timeout = api_timeout
        self._window = window_wall_seconds

    def roll(self) -> None:
        """Maybe queue faults for the next calls (once per generated event)."""
        rates, roll, market = self._rates, self._rng.random, self._market
        if roll() < rates.api_5xx:
            market.inject(status=self._rng.choice([500, 502, 503]))
        if roll() < rates.api_429:
            market.inject(status=429, retry_after=1)
        if roll() < rates.api_timeout:
            market.inject(delay=self._timeout + 0.5)  # then served: the client has gone, its retry has not
        if roll() < rates.slow_past_window:
            # Three attempts of one PATCH stalled past the client's timeout: by the time one gets
            # through, the marketplace's 10-second window has passed and the change auto-accepted.
            market.inject(delay=max(self._window, self._timeout) + 0.5, method="PATCH", path=OPERATION_PATCH,
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
