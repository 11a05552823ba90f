"""How long to wait between attempts at a Fulfillment API call, and when to stop.

The client decides *what* is worth retrying (429, 5xx, timeouts, connection errors;
never 400/403/404/409); this policy only answers *how long* to wait: exponential
backoff with full jitter (every worker picks a random point in the window, so a fleet
that failed together does not retry together), replaced by the server's `Retry-After`
when it sends one. `Retry-After` is capped: a misbehaving header must not park a
worker for an hour while its queue message lock expires.

Test mode (as in hynek/stamina): `set_testing(True)` turns every pause into a no-op
for all policies in the process, and `RetryPolicy.no_wait()` builds one policy that
never sleeps. Both keep the attempt counting, so tests see the real retry behaviour.
"""

from __future__ import annotations

import random as _random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

_testing = False


def set_testing(enabled: bool) -> bool:
    """Switch process-wide test mode (no real sleeping); returns the previous setting."""
    global _testing
    previous, _testing = _testing, enabled
    return previous


def _no_sleep(_: float) -> None:
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Backoff with full jitter, honouring a capped Retry-After; attempts include the first."""

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 60.0
    sleep: Callable[[float], None] = time.sleep
    random: Callable[[], float] = _random.random

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {self.max_attempts}")
        if min(self.base_delay, self.max_delay, self.max_retry_after) < 0:
            raise ValueError("delays cannot be negative")

    @classmethod
    def no_wait(cls, max_attempts: int = 3) -> RetryPolicy:
        """A policy for tests: same attempts, no sleeping."""
        return cls(max_attempts=max_attempts, sleep=_no_sleep)

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max_delay, base_delay * 2**(attempt - 1))]."""
        window = min(self.max_delay, self.base_delay * 2.0 ** max(attempt - 1, 0))
        return window * self.random()

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        return self.backoff(attempt)

    def pause(self, seconds: float) -> None:
        if seconds > 0 and not _testing:
            self.sleep(seconds)


def parse_retry_after(value: str | None, now: Callable[[], datetime] | None = None) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP date; None if absent or unreadable."""
    text = (value or "").strip()
    if not text:
        return None
    try:  # RFC 9110 says whole seconds; fractions are accepted since they cost nothing
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if 0 <= seconds < float("inf") else None
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:  # RFC 9110 dates are GMT; a naive result means no zone was given
        moment = moment.replace(tzinfo=UTC)
    current = now() if now is not None else datetime.now(UTC)
    return max((moment - current).total_seconds(), 0.0)
