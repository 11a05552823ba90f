"""The store's codec: key escaping, row order and value conversions, without any storage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lifecycle.domain.model import Subscription
from lifecycle.store import codec, keys

FORBIDDEN_IN_KEYS = set("/\\#?") | {chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]}


@given(st.text())
def test_escaped_keys_unescape_to_the_original(value: str) -> None:
    assert keys.unescape_key(keys.escape_key(value)) == value


@given(st.text())
def test_escaped_keys_hold_no_character_tables_forbid(value: str) -> None:
    assert not set(keys.escape_key(value)) & FORBIDDEN_IN_KEYS


def test_plain_ids_are_kept_as_they_are() -> None:
    assert keys.escape_key("6f1b2c3d-0000-4e5f-8a9b-ünï") == "6f1b2c3d-0000-4e5f-8a9b-ünï"


@given(st.integers(1, 10**10 - 2))
def test_later_history_rows_sort_first(seq: int) -> None:
    assert keys.history_row(seq + 1) < keys.history_row(seq)


def test_history_rows_sort_between_their_bounds_and_apart_from_other_rows() -> None:
    row = keys.history_row(1)
    assert keys.HISTORY_PREFIX <= row < keys.HISTORY_END
    assert not keys.HISTORY_PREFIX <= keys.delivery_row("op") < keys.HISTORY_END
    assert not keys.HISTORY_PREFIX <= keys.STATE_ROW < keys.HISTORY_END


def test_quantities_beyond_int32_are_sent_as_int64() -> None:
    entity = codec.encode_state(Subscription(id="s", quantity=2**40), version=0)
    assert entity["Quantity"] == (str(2**40), "Edm.Int64")
    assert codec.decode_state(entity)[0].quantity == 2**40


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        codec.encode_state(Subscription(id="s", last_operation_at=datetime(2025, 1, 1)), version=0)


def test_decoded_datetimes_are_plain_utc_datetimes() -> None:
    class SdkDatetime(datetime):
        """Stands in for the SDK's datetime subclass."""

    eastern = SdkDatetime(2025, 1, 1, 7, tzinfo=timezone(timedelta(hours=-5)))
    entity = codec.encode_state(Subscription(id="s"), version=0) | {"LastOperationAt": eastern}
    decoded = codec.decode_state(entity)[0].last_operation_at
    assert type(decoded) is datetime
    assert decoded == datetime(2025, 1, 1, 12, tzinfo=UTC)
    assert decoded.tzinfo is UTC
