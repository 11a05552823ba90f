"""NCRONTAB's next occurrence: the six fields, their forms, and the expressions refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from lifecycle.local.schedule import Schedule, ScheduleError


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(("expression", "after", "expected"), [
    ("0 */30 * * * *", "2026-03-01T12:00:00", "2026-03-01T12:30:00"),  # the default: strictly after
    ("0 */30 * * * *", "2026-03-01T12:29:59.900", "2026-03-01T12:30:00"),
    ("0 */30 * * * *", "2026-03-01T23:45:00", "2026-03-02T00:00:00"),
    ("* * * * * *", "2026-03-01T12:00:00.500", "2026-03-01T12:00:01"),
    ("*/15 * * * * *", "2026-03-01T12:00:46", "2026-03-01T12:01:00"),
    ("0 5 * * * *", "2026-03-01T12:05:00", "2026-03-01T13:05:00"),
    ("0 0 9-17 * * *", "2026-03-01T17:30:00", "2026-03-02T09:00:00"),
    ("0 0 8,12,18 * * *", "2026-03-01T12:00:00", "2026-03-01T18:00:00"),
    ("0 0 0 1 * *", "2026-12-15T00:00:00", "2027-01-01T00:00:00"),  # across a year
    ("0 0 0 29 2 *", "2026-03-01T00:00:00", "2028-02-29T00:00:00"),  # the next leap day
    ("0 0 0 31 * *", "2026-04-01T00:00:00", "2026-05-31T00:00:00"),  # April has no 31st
    ("0 0 12 * * 1-5", "2026-03-06T12:00:00", "2026-03-09T12:00:00"),  # Friday -> Monday
    ("0 0 12 * * 0", "2026-03-01T12:00:00", "2026-03-08T12:00:00"),  # 0 = Sunday (2026-03-01 is one)
    ("0 0 0 13 * 5", "2026-03-14T00:00:00", "2026-11-13T00:00:00"),  # day AND weekday: Friday the 13th
    ("0 10-50/20 * * * *", "2026-03-01T12:31:00", "2026-03-01T12:50:00"),
    ("5/20 * * * * *", "2026-03-01T12:00:26", "2026-03-01T12:00:45"),
])
def test_the_next_occurrence(expression: str, after: str, expected: str) -> None:
    assert Schedule.parse(expression).next_after(at(after)) == at(expected)


def test_a_time_in_another_zone_is_read_as_that_instant_and_answered_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    assert Schedule.parse("0 0 * * * *").next_after(datetime(2026, 3, 1, 12, 30, tzinfo=paris)) == at(
        "2026-03-01T12:00:00")


@pytest.mark.parametrize(("expression", "names"), [
    ("0 */30 * * *", "6 fields"),  # five-field cron
    ("0 60 * * * *", "minute"),
    ("0 0 24 * * *", "hour"),
    ("0 0 0 0 * *", "day"),
    ("0 0 0 * 13 *", "month"),
    ("0 0 0 * * 7", "day-of-week"),
    ("0 0 0 * * Mon", "day-of-week"),
    ("0 0 0 * JAN *", "month"),
    ("0 0 0 ? * *", "day"),
    ("0 0 0 L * *", "day"),
    ("0 */0 * * * *", "minute"),
    ("0 30-10 * * * *", "minute"),
])
def test_an_unsupported_expression_is_refused_naming_the_field(expression: str, names: str) -> None:
    with pytest.raises(ScheduleError, match=names):
        Schedule.parse(expression)


def test_a_schedule_that_never_fires_says_so() -> None:
    with pytest.raises(ScheduleError, match="does not fire"):
        Schedule.parse("0 0 0 30 2 *").next_after(at("2026-01-01T00:00:00"))
