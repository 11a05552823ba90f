"""The last line of defence in the logs: secrets redacted, long values cut, ids kept."""

from __future__ import annotations

from lifecycle.logs import MAX_VALUE_CHARS, redact


def test_values_under_secret_looking_keys_are_redacted() -> None:
    line = redact(None, "info", {"event": "x", "authorization": "Bearer abc", "client_secret": "s3", "id_token": "t"})
    hidden = "[redacted]"
    assert line == {"event": "x", "authorization": hidden, "client_secret": hidden, "id_token": hidden}


def test_ids_and_counts_stay_readable() -> None:
    line = redact(None, "info", {"event": "x", "subscription_id": "sub", "token_count": 3, "size_bytes": 10})
    assert line == {"event": "x", "subscription_id": "sub", "token_count": 3, "size_bytes": 10}


def test_long_values_are_cut() -> None:
    line = redact(None, "info", {"event": "x", "reason": "r" * 1000})
    assert len(line["reason"]) == MAX_VALUE_CHARS + 1
