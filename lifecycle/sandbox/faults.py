"""Fault injection for the Fulfillment API: answers the marketplace gives on a bad day.

Faults wait in one FIFO queue; each API call takes the first fault that matches it
(method and path substring, when given) and uses up one of its `times`. A fault may
delay the answer (long enough to time a client out), replace it with an error status
(429 with `Retry-After`, 5xx), or both: delay, then fail.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault:
    """One injected misbehaviour; `status=None` means "serve the call normally" (after `delay`)."""

    status: int | None = None
    retry_after: float | None = None
    delay: float = 0.0
    path: str | None = None
    method: str | None = None
    body: str | None = None

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path is None or self.path in path

    @property
    def retry_after_header(self) -> str | None:
        if self.retry_after is None:
            return None
        # Whole seconds as HTTP expects; fractions only when a test asked for them.
        return f"{self.retry_after:g}"


class FaultQueue:
    """Injected faults in arrival order, each with how many calls it still applies to."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[tuple[Fault, int]] = []
        self._applied: list[tuple[str, str, Fault]] = []

    def inject(self, fault: Fault, times: int = 1) -> None:
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._queue.append((fault, times))

    def take(self, method: str, path: str) -> Fault | None:
        """The fault the next call (method, path) must suffer, if any, used up once."""
        with self._lock:
            for index, (fault, left) in enumerate(self._queue):
                if fault.matches(method, path):
                    if left == 1:
                        del self._queue[index]
                    else:
                        self._queue[index] = (fault, left - 1)
                    self._applied.append((method, path, fault))
                    return fault
            return None

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    @property
    def pending(self) -> int:
        """How many more calls the queued faults will hit."""
        with self._lock:
            return sum(left for _, left in self._queue)

    @property
    def applied(self) -> list[tuple[str, str, Fault]]:
        """(method, path, fault) for every call a fault hit, oldest first."""
        with self._lock:
            return list(self._applied)
