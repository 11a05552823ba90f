"""Time for the sandbox: a clock port, a manual clock for tests, and Microsoft's formats.

Every deadline (auto-accept, token expiry, pending activation) is compared with the
marketplace's clock, so a test can move time on instead of sleeping.
"""

from __future__ import annotations

import calendar
import threading
import time
from datetime import UTC, date, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Where the marketplace reads the time."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to; thread-safe."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2025, 1, 15, 9, 30, tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now


class ScaledClock:
    """Wall time sped up `scale` times: the 10-second window passes in 10 / `scale` real seconds.

    For long runs (the soak) that must see many windows expire without waiting for them;
    only the marketplace's own deadlines and timestamps move faster, never the worker's.
    """

    def __init__(self, scale: float, start: datetime | None = None) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        self.scale = scale
        self._start = start or datetime.now(UTC)
        self._origin = time.monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(time.monotonic() - self._origin) * self.scale)

    def wall_seconds(self, marketplace_seconds: float) -> float:
        """How long `marketplace_seconds` of this clock take in real time."""
        return marketplace_seconds / self.scale


def ms_timestamp(moment: datetime) -> str:
    """Microsoft's operation/webhook timestamp: UTC, seven fraction digits, `Z`."""
    moment = moment.astimezone(UTC)
    # .NET ticks are 100 ns: the seventh digit exists but Python has no value for it.
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0Z"


def ms_datetime(moment: datetime) -> str:
    """`created`/`lastModified` style: UTC with microseconds, `Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def term_date(day: date) -> str:
    """A term boundary as the API renders it (midnight UTC)."""
    return f"{day.isoformat()}T00:00:00Z"


TERM_MONTHS = {"P1M": 1, "P1Y": 12, "P2Y": 24, "P3Y": 36, "P4Y": 48, "P5Y": 60}
"""The billing terms the marketplace sells, in months."""


def add_term(start: date, term_unit: str) -> date:
    """The day a term that starts on `start` ends (the next term starts that day)."""
    months = TERM_MONTHS[term_unit]
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    # Clamp: a term from 31 January ends on the last day of February.
    day = min(start.day, calendar.monthrange(year, month)[1])
    return date(year, month, day)
