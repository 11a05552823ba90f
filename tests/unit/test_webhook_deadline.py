"""A refusal the webhook reaches too late is not given: the marketplace has auto-accepted by then."""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from datetime import timedelta
from typing import Any

from structlog.testing import capture_logs

from lifecycle.domain.events import Event
from lifecycle.domain.model import Subscription
from lifecycle.domain.records import DeliveryStatus
from lifecycle.sandbox import ManualClock
from lifecycle.services.ingress import ACCEPTED, DECISION_SECONDS, WebhookService
from lifecycle.services.policy import ChangePolicy, Verdict
from tests.fakes.queue import FakeQueue
from tests.fakes.store import FakeSubscriptionStore

CHANGE = json.dumps({"id": "op-1", "subscriptionId": "sub-1", "action": "ChangeQuantity", "quantity": 90}).encode()


class SlowRefusal(ChangePolicy):
    """Refuses every change after `seconds` on the webhook's own monotonic clock (a slow API)."""

    def __init__(self, now: list[float], seconds: float) -> None:  # no API: nothing is asked
        self._now, self._seconds = now, seconds

    def check(self, event: Event, state: Subscription | None) -> Verdict:
        self._now[0] += self._seconds
        return Verdict(False, "quantity 90 is outside plan 'team''s seats (1..50)")


def receive(seconds: float) -> tuple[int, FakeSubscriptionStore, FakeQueue, list[MutableMapping[str, Any]]]:
    now = [1000.0]
    store, queue = FakeSubscriptionStore(), FakeQueue()
    service = WebhookService(store, queue, SlowRefusal(now, seconds), ManualClock(), authenticator=None,
                             monotonic=lambda: now[0])
    with capture_logs() as logs:
        answer = service.receive(None, CHANGE)
    return answer.status, store, queue, logs


def test_a_refusal_reached_in_time_is_answered_400_and_recorded() -> None:
    status, store, queue, _ = receive(DECISION_SECONDS - 1)
    record = store.delivery("sub-1", "op-1")
    assert status == 400
    assert record is not None
    assert record.status is DeliveryStatus.REJECTED
    assert queue.sent == []


def test_a_refusal_reached_after_the_decision_window_is_not_given_and_the_change_is_enqueued() -> None:
    status, store, queue, logs = receive(DECISION_SECONDS + 1)
    record = store.delivery("sub-1", "op-1")
    assert status == 200
    assert record is not None
    assert (record.status, record.outcome) == (DeliveryStatus.RECEIVED, ACCEPTED)
    assert [m.message_id for m in queue.sent] == ["op-1"]
    [late] = [line for line in logs if line["event"] == "webhook.refusal_too_late"]
    assert late["elapsed_ms"] == (DECISION_SECONDS + 1) * 1000
    assert "outside plan" in str(late["reason"])


class SlowAccept(ChangePolicy):
    """Accepts after `seconds` on the webhook's wall clock (a slow API or veto inside the window)."""

    def __init__(self, clock: ManualClock, seconds: float) -> None:  # no API: nothing is asked
        self._clock, self._seconds = clock, seconds

    def check(self, event: Event, state: Subscription | None) -> Verdict:
        self._clock.advance(self._seconds)
        return Verdict(True)


def test_the_enqueue_delay_counts_from_the_send_not_from_the_request_s_start() -> None:
    # Otherwise a slow judgement makes the message due before it is sent, and our PATCH may
    # overtake the webhook's own answer.
    clock = ManualClock()
    queue = FakeQueue(now=clock.now)
    service = WebhookService(FakeSubscriptionStore(), queue, SlowAccept(clock, 5.0), clock, authenticator=None,
                             enqueue_delay=timedelta(seconds=2))

    assert service.receive(None, CHANGE).status == 200

    [message] = queue.sent
    assert message.scheduled_at == clock.now() + timedelta(seconds=2)

