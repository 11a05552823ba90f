"""What a soak run does: its size, seed, and the rate of every fault it injects."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultRates:
    """Per generated event, the chance of each fault (API faults hit the next matching call)."""

    duplicate: float = 0.10  # the same webhook delivered twice, concurrently
    reorder: float = 0.10  # a delivery held back so later ones of its subscription overtake it
    late: float = 0.03  # redelivered at the end, past the queue's duplicate-detection window
    api_5xx: float = 0.03
    api_429: float = 0.02  # with Retry-After
    api_timeout: float = 0.01  # an answer slower than the worker's API timeout
    slow_past_window: float = 0.003  # PATCHes stalled until the 10-second window has passed
    rejected_change: float = 0.02  # a change our webhook must refuse (seats above the plan's maximum)


@dataclass(frozen=True, slots=True, kw_only=True)
class SoakConfig:
    subscriptions: int = 1000
    events: int = 20000
    seed: int = 7
    kills: int | None = None  # SIGKILLs spread over the run; None: one per 1,000 events, at least 3
    rates: FaultRates = FaultRates()
    time_scale: float = 2.0  # the marketplace's clock runs this much faster: its 10 s window in 5 s
    processors: int = 2  # worker processes on the same queue and tables (the first serves HTTP)
    loops: int = 2  # processing loops in each
    in_flight: int = 24  # webhook deliveries under way at once (the marketplace's concurrency)
    dedup_seconds: float = 2.0  # the queue's duplicate-detection window, scaled down from hours
    lock_seconds: float = 5.0  # the queue's peek-lock: a killed worker's messages return after it
    api_timeout_seconds: float = 2.0
    drain_timeout_seconds: float = 900.0  # room for rescheduled messages (30 s, 60 s, ... back-off)

    @property
    def kill_count(self) -> int:
        return self.kills if self.kills is not None else max(3, self.events // 1000)
