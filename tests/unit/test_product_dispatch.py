"""The dispatcher: in order per subscription, a later event waits for a failing earlier one,
backoff doubles up to its cap; against TableOutbox on Azurite and a loopback HTTP product."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest

from lifecycle.domain.history import ChangeKind
from lifecycle.domain.model import Status, Subscription
from lifecycle.product.dispatcher import Dispatcher
from lifecycle.product.outbox import TableOutbox
from lifecycle.product.sender import HttpEventSender
from lifecycle.product.signing import EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from lifecycle.sandbox import ManualClock
from tests.unit.product_server import ProductServer

SECRET = "unit-secret"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def outbox(azurite_connection_string: str, table_prefix: str, clock: ManualClock) -> Iterator[TableOutbox]:
    table = TableOutbox.from_connection_string(azurite_connection_string, table_prefix, clock)
    yield table
    table.close()


@pytest.fixture
def product() -> Iterator[ProductServer]:
    with ProductServer() as server:
        yield server


def dispatcher(outbox: TableOutbox, product: ProductServer, clock: ManualClock) -> Dispatcher:
    return Dispatcher(outbox, HttpEventSender(product.url, SECRET, timeout=5), clock, first_retry=5, max_retry=60)


def tell(outbox: TableOutbox, sid: str, *changes: ChangeKind) -> None:
    for number, change in enumerate(changes):
        outbox.notify(change, Subscription(id=sid, status=Status.SUBSCRIBED), operation_id=f"{sid}-{number}")


def test_events_go_out_signed_and_in_order(outbox: TableOutbox, product: ProductServer, clock: ManualClock) -> None:
    sid = str(uuid.uuid4())
    tell(outbox, sid, ChangeKind.ACTIVATED, ChangeKind.SUSPENDED, ChangeKind.UNSUBSCRIBED)
    report = dispatcher(outbox, product, clock).dispatch()
    assert report.delivered == 3
    assert [b["type"] for b in product.bodies()] == [
        "subscription.activated", "subscription.suspended", "subscription.unsubscribed"]
    headers, body = product.received[0]
    assert headers[EVENT_ID_HEADER] == product.bodies()[0]["id"]
    stamp = headers[TIMESTAMP_HEADER]
    assert verify(SECRET, body, stamp, headers[SIGNATURE_HEADER], now=float(stamp))
    assert [e.status for e in outbox.events(sid)] == ["delivered"] * 3
    assert list(outbox.pending()) == []


def test_a_failing_event_holds_back_the_later_ones_of_its_subscription(
    outbox: TableOutbox, product: ProductServer, clock: ManualClock
) -> None:
    sid = str(uuid.uuid4())
    tell(outbox, sid, ChangeKind.SUSPENDED, ChangeKind.REINSTATED)
    product.status = 503
    report = dispatcher(outbox, product, clock).dispatch()
    assert (report.delivered, report.failed, report.waiting) == (0, 1, 1)
    assert len(product.received) == 1  # the second was never tried
    first, second = outbox.events(sid)
    retry_at = clock.now() + timedelta(seconds=5)
    assert (first.attempts, first.last_error[:8], first.next_attempt_at) == (1, "HTTP 503", retry_at)
    assert (second.attempts, second.status) == (0, "pending")


def test_retries_wait_for_their_time_and_back_off_doubling_to_the_cap(
    outbox: TableOutbox, product: ProductServer, clock: ManualClock
) -> None:
    sid = str(uuid.uuid4())
    tell(outbox, sid, ChangeKind.SUSPENDED)
    product.status = 500
    sending = dispatcher(outbox, product, clock)
    sending.dispatch()
    assert sending.dispatch().waiting == 1  # not due yet: nothing sent
    assert len(product.received) == 1
    waits = []
    for _ in range(5):
        [entry] = outbox.events(sid)
        assert entry.next_attempt_at is not None
        waits.append((entry.next_attempt_at - clock.now()).total_seconds())
        clock.advance(waits[-1])
        sending.dispatch()
    assert waits == [5, 10, 20, 40, 60]
    product.status = 200
    clock.advance(60)
    assert sending.dispatch().delivered == 1
    [entry] = outbox.events(sid)
    assert (entry.status, entry.attempts, entry.last_error) == ("delivered", 7, "")


def test_one_subscriptions_failure_does_not_hold_back_another(
    outbox: TableOutbox, product: ProductServer, clock: ManualClock
) -> None:
    stuck, fine = str(uuid.uuid4()), str(uuid.uuid4())
    tell(outbox, stuck, ChangeKind.SUSPENDED)
    sending = dispatcher(outbox, product, clock)
    product.status = 500
    sending.dispatch()
    product.status = 200
    tell(outbox, fine, ChangeKind.ACTIVATED)
    assert sending.dispatch().delivered == 1
    assert [e.status for e in outbox.events(fine)] == ["delivered"]
    assert [e.status for e in outbox.events(stuck)] == ["pending"]


def test_an_unreachable_product_is_a_recorded_failure(outbox: TableOutbox, clock: ManualClock) -> None:
    sid = str(uuid.uuid4())
    tell(outbox, sid, ChangeKind.ACTIVATED)
    sender = HttpEventSender("http://127.0.0.1:9/", SECRET, timeout=1)  # the discard port: refused
    Dispatcher(outbox, sender, clock).dispatch()
    [entry] = outbox.events(sid)
    assert (entry.status, entry.attempts) == ("pending", 1)
    assert entry.last_error.startswith("ConnectError")
