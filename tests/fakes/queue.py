"""FakeQueue: the Queue and DeadLetters ports in memory, held to the real adapters by the queue contract tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from lifecycle.errors import QueueUnavailable
from lifecycle.ports import DeadLetter, QueueMessage

DUPLICATE_WINDOW = timedelta(hours=8, minutes=30)  # the local queue's default, and the deployed queue's


class FakeQueue:
    """Keeps what was sent; drops a message id first seen within the duplicate window, as
    duplicate detection does (a redelivery hours later gets through).

    `dead_letter` puts a message where the broker would after giving up on it; a replay
    sends a copy under a new id, as the Service Bus adapter does.
    """

    def __init__(self, *, now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 duplicate_window: timedelta = DUPLICATE_WINDOW) -> None:
        self.sent: list[QueueMessage] = []
        self.dead: list[DeadLetter] = []
        self._now = now
        self._window = duplicate_window
        self._seen: dict[str, datetime] = {}
        self._failures = 0
        self._replays = 0

    def fail_next_sends(self, sends: int = 1) -> None:
        self._failures = sends

    def send(self, message: QueueMessage) -> None:
        if self._failures:
            self._failures -= 1
            raise QueueUnavailable("injected queue outage")
        now = self._now()
        first = self._seen.get(message.message_id)
        if first is not None and now - first < self._window:
            return
        self._seen[message.message_id] = now
        self.sent.append(message)

    def dead_letter(self, message: QueueMessage, reason: str, delivery_count: int = 1) -> None:
        self.dead.append(DeadLetter(message, reason, delivery_count, self._now()))

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        return list(self.dead[:limit])

    def replay(self, message_id: str) -> bool:
        found = next((dead for dead in self.dead if dead.message.message_id == message_id), None)
        if found is None:
            return False
        self._replays += 1
        copy = replace(found.message, message_id=f"{message_id}:replay:{self._replays}", attempt=1,
                       source="replay", scheduled_at=None)
        self.send(copy)
        self.dead.remove(found)
        return True
