"""Message ids: our re-sends and replays keep the operation id readable at the front."""

from __future__ import annotations

import pytest

from lifecycle.ports import operation_id_of, resend_id

OPERATION = "5f1c0a9e-3c1d-4f7b-9a56-0c2b1d7e8a11"


@pytest.mark.parametrize(
    ("message_id", "attempt", "expected"),
    [
        (OPERATION, 2, f"{OPERATION}#2"),
        (f"{OPERATION}#2", 3, f"{OPERATION}#3"),
        (f"{OPERATION}#9", 10, f"{OPERATION}#10"),
        # A replayed re-send keeps its replay suffix: "op#2" again would be a duplicate of the first re-send.
        (f"{OPERATION}#4:replay:17", 2, f"{OPERATION}#4:replay:17#2"),
        (f"{OPERATION}:replay:17#2", 3, f"{OPERATION}:replay:17#3"),
    ],
)
def test_a_resend_id_carries_one_attempt_suffix(message_id: str, attempt: int, expected: str) -> None:
    assert resend_id(message_id, attempt) == expected


@pytest.mark.parametrize(
    "message_id",
    [OPERATION, f"{OPERATION}#3", f"{OPERATION}:replay:17", f"{OPERATION}:replay:17#2", f"{OPERATION}#4:replay:17#2"],
)
def test_the_operation_id_is_read_back_from_any_message_id(message_id: str) -> None:
    assert operation_id_of(message_id) == OPERATION
