"""Lenient reading of single JSON values (statuses, quantities, dates, text), for `parsing`.

Each takes whatever the body held (None, "", padded or oddly cased text, numbers as
strings) and returns the domain value, or raises InvalidPayload naming the field.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from lifecycle.domain.model import OperationStatus, Status
from lifecycle.errors import InvalidPayload

_STATUS_ALIASES = {"success": OperationStatus.SUCCEEDED, "succeeded": OperationStatus.SUCCEEDED}
_STATUSES = {status.value.lower(): status for status in Status}


def subscription_status(value: object) -> Status:
    text = stripped(value)
    status = _STATUSES.get(text.lower())  # a dict, not a loop: every listed item goes through here
    if status is None:
        raise InvalidPayload(f"saasSubscriptionStatus {text!r} is not a known status")
    return status


def operation_status(value: object) -> OperationStatus:
    text = stripped(value).lower()
    if not text:
        return OperationStatus.NOT_STARTED
    for status in OperationStatus:
        if status.value.lower() == text:
            return status
    if text in _STATUS_ALIASES:
        return _STATUS_ALIASES[text]
    raise InvalidPayload(f"operation status {text!r} is not a known status")


def parse_quantity(value: object, name: str) -> int | None:
    """An int, a numeric string, or nothing (None, "", absent) for flat-rate plans."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = str(value).strip()
    if not text:
        return None
    if re.fullmatch(r"[+-]?\d{1,9}", text):
        return int(text)
    raise InvalidPayload(f"{name} {text[:40]!r} is not a whole number")


def lenient_quantity(value: object) -> int | None:
    """`parse_quantity`, or None where it would refuse (a webhook's own quantity is advisory)."""
    try:
        return parse_quantity(value, "quantity")
    except InvalidPayload:
        return None  # "seven" tells nothing; the operation's quantity will


def parse_datetime(value: object, name: str) -> datetime | None:
    """ISO 8601 in UTC; up to 7 fraction digits (Microsoft's) are cut to Python's 6."""
    text = stripped(value)
    if not text:
        return None
    match = re.fullmatch(r"(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)?", text)
    if match is None:
        raise InvalidPayload(f"{name} {text[:40]!r} is not an ISO 8601 date and time")
    whole, fraction, zone = match.groups()
    fraction = ((fraction or "") + "000000")[:6]
    zone = "+00:00" if zone in (None, "Z") else zone
    try:
        return datetime.fromisoformat(f"{whole}.{fraction}{zone}").astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: a zone pushing year 1 or 9999 past the calendar
        raise InvalidPayload(f"{name} {text[:40]!r} is not a valid date and time") from None


def parse_date(value: object, name: str) -> date | None:
    """The date of an ISO 8601 date or date-time (its first ten characters); None when empty."""
    text = stripped(value)
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise InvalidPayload(f"{name} {text[:40]!r} is not a date") from None


def stripped(value: object) -> str:
    """Text without surrounding blanks; "" for None or a JSON object or array."""
    if value is None or isinstance(value, (dict, list)):
        return ""
    return str(value).strip()


def flag(value: object) -> bool:
    """A JSON boolean, or the text "true" in any case."""
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def tenant(value: object) -> str:
    """The tenantId of a purchaser or beneficiary object; "" when absent."""
    return stripped(value.get("tenantId")) if isinstance(value, dict) else ""
