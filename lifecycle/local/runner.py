"""Processing loops over the local queue: what the Service Bus trigger does in Azure.

Each loop receives one message (peek-lock), hands it to `handle_message`, and settles
it from the outcome, as the Functions host settles a session message:

    complete                 -> complete
    rescheduled              -> complete (a delayed copy with attempt + 1 is already queued)
    dead_letter(reason)      -> dead-letter with that reason
    raises (TransientError, or a bug)
                             -> abandon with a back-off: the message comes back after
                                `backoff(delivery_count)` seconds, its session blocked
                                meanwhile, and the queue dead-letters it past its max
                                delivery count, so a failing message cannot spin.

Loops work on different sessions (subscriptions) at once; one session is never handled
by two loops (the queue locks it). `stop()` lets each loop finish the message in hand.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass

from lifecycle.entrypoints.processor import Disposition, Handled, handle_message
from lifecycle.errors import LifecycleError, TransientError
from lifecycle.local.queue import LocalQueue, Received
from lifecycle.logs import get_logger
from lifecycle.ports import Clock, QueueMessage, operation_id_of
from lifecycle.services.processing import ProcessingService

Handle = Callable[[QueueMessage, int], Handled]
"""One message and its delivery count through processing (bound `handle_message`); raises for a redelivery."""


def processing(service: ProcessingService, queue: LocalQueue, clock: Clock) -> Handle:
    """`handle_message` bound to one worker's processing, with the local queue's delivery count."""

    def handle(message: QueueMessage, delivery_count: int) -> Handled:
        return handle_message(message, service, queue, clock, delivery_count=delivery_count)

    return handle


@dataclass(frozen=True, slots=True)
class Backoff:
    """Seconds before an abandoned message comes back: base * 2^(deliveries - 1), capped."""

    base: float = 0.5
    cap: float = 30.0

    def __call__(self, delivery_count: int) -> float:
        return min(self.base * 2.0 ** max(delivery_count - 1, 0), self.cap)


class Runner:
    """`loops` threads taking messages from `queue` until stopped."""

    def __init__(
        self,
        queue: LocalQueue,
        handle: Handle,
        *,
        loops: int = 4,
        idle_wait: float = 0.1,
        backoff: Backoff | None = None,
    ) -> None:
        if loops < 1:
            raise ValueError("the runner needs at least one loop")
        self._queue = queue
        self._handle = handle
        self._loops = loops
        self._idle_wait = idle_wait  # how stale an empty queue may be seen: latency vs. polling
        self._backoff = backoff or Backoff()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._log = get_logger("lifecycle.local.runner")

    def start(self) -> Runner:
        self._stopping.clear()
        self._threads = [
            threading.Thread(target=self._loop, name=f"processor-{n}", daemon=True) for n in range(1, self._loops + 1)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 15.0) -> bool:
        """Stop taking messages and wait for those in hand; False if one outlasted `timeout`.

        A message still in hand then keeps its lock until it expires and is redelivered on
        the next start: nothing is lost, at worst processed twice (processing is idempotent).
        """
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout)
        finished = not any(thread.is_alive() for thread in self._threads)
        self._threads = []
        return finished

    def run_once(self) -> bool:
        """Take and settle one message; False when none is deliverable now."""
        try:
            received = self._queue.receive()
        except sqlite3.Error as error:
            self._log.error("queue.receive_failed", error_type=type(error).__name__, reason=str(error))
            return False
        if received is None:
            return False
        self._settle(received)
        return True

    def _loop(self) -> None:
        while not self._stopping.is_set():
            if not self.run_once():
                self._stopping.wait(self._idle_wait)

    def _settle(self, received: Received) -> None:
        message = received.message
        log = self._log.bind(subscription_id=message.session_id, operation_id=operation_id_of(message.message_id),
                             message_id=message.message_id, delivery_count=received.delivery_count)
        try:
            handled = self._handle(message, received.delivery_count)
        except Exception as error:
            delay = self._backoff(received.delivery_count)
            # Our own transient errors are expected weather; anything else is a bug worth a traceback.
            expected = isinstance(error, TransientError)
            reason = f"{type(error).__name__}: {error}" if isinstance(error, LifecycleError) else type(error).__name__
            log.warning("message.abandoned", reason=reason, retry_in_seconds=delay, exc_info=not expected)
            self._safely(self._queue.abandon, received.lock_token, reason, delay=delay)
            return
        if handled.disposition is Disposition.DEAD_LETTER:
            log.error("message.dead_lettered", reason=handled.reason, recorded=handled.recorded)
            self._safely(self._queue.dead_letter, received.lock_token, handled.reason)
        else:  # COMPLETE, or RESCHEDULED: its delayed copy is queued already
            log.debug("message.completed", disposition=handled.disposition.value)
            self._safely(self._queue.complete, received.lock_token)

    def _safely(self, settle: Callable[..., None], *args: object, **kwargs: object) -> None:
        try:
            settle(*args, **kwargs)
        except sqlite3.Error as error:
            # Unsettled, the message's lock expires and it is delivered again: logged, not raised.
            self._log.error("queue.settle_failed", error_type=type(error).__name__, reason=str(error))
