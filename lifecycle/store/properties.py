"""Property values as the Azure SDK sends and returns them, shared by every row codec.

Standard library only. The SDK sends a bare int as Int32, returns Int64 as a (value,
type) tuple, and reads a naive datetime as local time: each helper handles one of those.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

_INT32 = range(-(2**31), 2**31)
MAX_TEXT = 30_000  # a String property holds 64 KiB of UTF-16: stay well inside it


def int_property(value: int | None) -> int | tuple[str, str] | None:
    # The SDK sends a bare int as Int32 and refuses larger ones; wider values need the type spelt out.
    if value is None or value in _INT32:
        return value
    return (str(value), "Edm.Int64")


def plain_int(value: Any) -> int | None:
    # Int64 properties come back as the SDK's EntityProperty, a (value, type) named tuple.
    return int(value[0]) if isinstance(value, tuple) else value


def aware(value: datetime | None) -> datetime | None:
    # The SDK would read a naive datetime as local time; refuse it rather than shift it silently.
    if value is not None and value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()}: the store needs timezone-aware times")
    return value


def utc(value: datetime) -> datetime:
    # A plain datetime, not the SDK's subclass, so no SDK type travels inward.
    moment = value.astimezone(UTC)
    return datetime.combine(moment.date(), moment.timetz())


def utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else utc(value)
