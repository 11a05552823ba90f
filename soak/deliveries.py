"""The marketplace's deliveries as the soak makes them: concurrent, duplicated, reordered, late.

Every operation is delivered by the sandbox's real `WebhookSender` (signed, retried on
5xx and on no answer, its 4xx deciding a change). The random choices are made in the
caller's thread, so a seed gives the same plan of faults whatever the timing. At most
`in_flight` deliveries are under way at once: the generator waits for a free slot,
which paces it to what the worker absorbs.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor

from lifecycle.sandbox import WebhookSender
from soak.config import FaultRates


class Deliveries:
    def __init__(self, sender: WebhookSender, rng: random.Random, rates: FaultRates, in_flight: int) -> None:
        self._sender = sender
        self._rng = rng
        self._rates = rates
        self._pool = ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="soak-delivery")
        self._slots = threading.BoundedSemaphore(in_flight)
        self._futures: list[Future[None]] = []
        self.injected: Counter[str] = Counter()
        self.late: list[str] = []

    def send(self, operation_id: str) -> None:
        """Deliver one new operation, with whatever faults the dice pick for it."""
        rates, roll = self._rates, self._rng.random
        delay = 0.0
        if roll() < rates.reorder:
            delay = self._rng.uniform(0.5, 4.0)  # later operations of the subscription overtake it
            self.injected["reordered"] += 1
        self._submit(operation_id, delay)
        if roll() < rates.duplicate:
            self._submit(operation_id, self._rng.uniform(0.0, 1.0))
            self.injected["duplicate"] += 1
        if roll() < rates.late:
            self.late.append(operation_id)

    def again(self, operation_id: str) -> None:
        """One more delivery of an old operation (a late redelivery, the marketplace's retries)."""
        self._submit(operation_id, 0.0)

    def _submit(self, operation_id: str, delay: float) -> None:
        self._slots.acquire()
        self._futures.append(self._pool.submit(self._deliver, operation_id, delay))

    def _deliver(self, operation_id: str, delay: float) -> None:
        try:
            if delay:
                time.sleep(delay)  # holding a slot: a held-back delivery counts as under way
            self._sender.deliver(operation_id)
        finally:
            self._slots.release()

    def wait(self) -> None:
        """Until every delivery so far has its final answer (or the sender gave up); re-raises bugs."""
        futures, self._futures = self._futures, []
        for future in futures:
            future.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
