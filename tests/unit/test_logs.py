"""The last line of defence in the logs: secrets redacted, long values cut, ids kept."""

from __future__ import annotations

import io
import json

from lifecycle.logs import MAX_TRACEBACK_CHARS, MAX_VALUE_CHARS, configure, get_logger, redact


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


def test_a_traceback_is_bounded_and_keeps_its_end() -> None:
    stream = io.StringIO()
    configure("INFO", stream=stream, json=True)
    try:
        raise ValueError("x" * 10_000 + " and the end of the message")
    except ValueError:
        get_logger("lifecycle.test").error("crashed", exc_info=True)
    line = json.loads(stream.getvalue())
    assert len(line["exception"]) == MAX_TRACEBACK_CHARS + 1
    assert line["exception"].rstrip().endswith("x and the end of the message")
