"""NCRONTAB schedules, as the Functions host reads RECONCILE_SCHEDULE: `next_after` is all the local timer needs.

Six fields, seconds first, in UTC (the host's default):

    second minute hour day month day-of-week      e.g. "0 */30 * * * *": every half hour
    0-59   0-59   0-23 1-31 1-12  0-6 (0 = Sunday)

Each field is `*`, a number, a range `a-b`, a step `*/n` or `a-b/n`, or a comma list of
those. Names (`Mon`, `Jan`) and the Quartz extras (`?`, `L`, `W`, `#`) are refused with
the field named. Like NCrontab (the library behind the host's timer), a time matches when
every field matches: day and day-of-week are combined with AND, not cron's OR.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

FIELDS: tuple[tuple[str, int, int], ...] = (
    ("second", 0, 59), ("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12), ("day-of-week", 0, 6),
)
HORIZON = timedelta(days=366 * 5)  # beyond this a schedule is taken never to fire ("0 0 0 30 2 *")


class ScheduleError(ValueError):
    """An expression outside what `Schedule.parse` supports; the message names the field."""


@dataclass(frozen=True, slots=True)
class Schedule:
    """The allowed values of each field of one NCRONTAB expression."""

    expression: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]

    @classmethod
    def parse(cls, expression: str) -> Schedule:
        parts = expression.split()
        if len(parts) != len(FIELDS):
            raise ScheduleError(f"{expression!r}: NCRONTAB needs {len(FIELDS)} fields "
                                f"(second minute hour day month day-of-week), got {len(parts)}")
        values = [_field(part, name, low, high) for part, (name, low, high) in zip(parts, FIELDS, strict=True)]
        return cls(expression, *values)

    def next_after(self, moment: datetime) -> datetime:
        """The first whole second strictly after `moment` (aware) that the schedule fires at, in UTC."""
        start = moment.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)
        at = start
        while at - start <= HORIZON:
            if at.month not in self.months:
                at = _first_of_next_month(at)
            elif at.day not in self.days or (at.weekday() + 1) % 7 not in self.weekdays:
                at = at.replace(hour=0, minute=0, second=0) + timedelta(days=1)
            elif at.hour not in self.hours:
                at = at.replace(minute=0, second=0) + timedelta(hours=1)
            elif at.minute not in self.minutes:
                at = at.replace(second=0) + timedelta(minutes=1)
            elif at.second not in self.seconds:
                at += timedelta(seconds=1)
            else:
                return at
        raise ScheduleError(f"{self.expression!r} does not fire within {HORIZON.days} days of {start.isoformat()}")


def _first_of_next_month(at: datetime) -> datetime:
    year, month = (at.year + 1, 1) if at.month == 12 else (at.year, at.month + 1)
    return at.replace(year=year, month=month, day=1, hour=0, minute=0, second=0)


def _field(text: str, name: str, low: int, high: int) -> frozenset[int]:
    allowed: set[int] = set()
    for item in text.split(","):
        allowed.update(_item(item, name, low, high))
    return frozenset(allowed)


def _item(item: str, name: str, low: int, high: int) -> range:
    span, _, step_text = item.partition("/")
    step = _number(step_text, name, item) if step_text else 1
    if step < 1:
        raise ScheduleError(f"{name} {item!r}: a step must be at least 1")
    if span == "*":
        first, last = low, high
    elif "-" in span:
        first_text, _, last_text = span.partition("-")
        first, last = _number(first_text, name, item), _number(last_text, name, item)
    else:
        first = _number(span, name, item)
        last = high if step_text else first  # "5/15": from 5 on, every 15, as NCrontab reads it
    if not low <= first <= last <= high:
        raise ScheduleError(f"{name} {item!r}: outside {low}-{high} or a range running backwards")
    return range(first, last + 1, step)


def _number(text: str, name: str, item: str) -> int:
    if not text.isdigit():
        raise ScheduleError(f"{name} {item!r}: only numbers, '*', ranges a-b, steps /n and lists are supported")
    return int(text)
