"""FakeQueue: the Queue port in memory, held to the real adapters by tests/contract/test_queue_contract.py."""

from __future__ import annotations

from lifecycle.errors import QueueUnavailable
from lifecycle.ports import QueueMessage


class FakeQueue:
    """Keeps what was sent; drops a message id seen before, as duplicate detection does."""

    def __init__(self) -> None:
        self.sent: list[QueueMessage] = []
        self._seen: set[str] = set()
        self._failures = 0

    def fail_next_sends(self, sends: int = 1) -> None:
        self._failures = sends

    def send(self, message: QueueMessage) -> None:
        if self._failures:
            self._failures -= 1
            raise QueueUnavailable("injected queue outage")
        if message.message_id in self._seen:
            return
        self._seen.add(message.message_id)
        self.sent.append(message)
