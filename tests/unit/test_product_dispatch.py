"""The dispatcher: in order per subscription, a later event waits for a failing earlier one,
backoff doubles up to its cap; against TableOutbox on Azurite and a loopback HTTP product."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from azure.data.tables import TableServiceClient

from lifecycle.domain.history import ChangeKind
from lifecycle.domain.model import Status, Subscription
from lifecycle.product.dispatcher import Dispatcher
from lifecycle.product.outbox import TableOutbox
from lifecycle.product.sender import HttpEventSender
from lifecycle.product.signing import EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from lifecycle.sandbox import ManualClock
from tests.fakes.product import FakeProduct
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


def test_a_pass_unlists_a_subscription_once_all_its_events_are_delivered(
    outbox: TableOutbox, product: ProductServer, clock: ManualClock
) -> None:
    done, stuck = str(uuid.uuid4()), str(uuid.uuid4())
    tell(outbox, done, ChangeKind.ACTIVATED, ChangeKind.SUSPENDED)
    sending = dispatcher(outbox, product, clock)
    sending.dispatch()
    product.status = 503
    tell(outbox, stuck, ChangeKind.ACTIVATED)
    sending.dispatch()
    assert {listing.subscription_id for listing in outbox.listings()} == {stuck}


class CountingReads:
    """A TableServiceClient that keeps every entity its table client hands back."""

    def __init__(self, service: TableServiceClient) -> None:
        self._service = service
        self.read: list[Any] = []

    def create_table_if_not_exists(self, name: str) -> object:
        table, read = self._service.create_table_if_not_exists(name), self.read

        class Counted:
            def __getattr__(self, attribute: str) -> Any:
                return getattr(table, attribute)

            def get_entity(self, *args: Any, **kwargs: Any) -> Any:
                read.append(entity := table.get_entity(*args, **kwargs))
                return entity

            def query_entities(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
                for entity in table.query_entities(*args, **kwargs):
                    read.append(entity)
                    yield entity
        return Counted()

    def close(self) -> None:
        self._service.close()


def test_a_pass_reads_the_listed_subscriptions_pending_rows_and_no_delivered_row(
    azurite_connection_string: str, table_prefix: str, product: ProductServer, clock: ManualClock
) -> None:
    counting = CountingReads(TableServiceClient.from_connection_string(azurite_connection_string))
    outbox = TableOutbox(counting, table_prefix, clock)  # type: ignore[arg-type]
    told = [str(uuid.uuid4()) for _ in range(20)]
    for sid in told:
        tell(outbox, sid, ChangeKind.ACTIVATED, ChangeKind.QUANTITY_CHANGED)
    sending = dispatcher(outbox, product, clock)
    assert sending.dispatch().delivered == 40
    waiting = str(uuid.uuid4())
    tell(outbox, waiting, ChangeKind.SUSPENDED)
    counting.read.clear()
    assert sending.dispatch().delivered == 1
    # The listing, then that subscription's head and pending row: nothing of the 40 delivered.
    assert sorted((e["PartitionKey"], e["RowKey"]) for e in counting.read) == sorted([
        ("pending", waiting), (waiting, "head"), (waiting, "seq|000000000001")])
    outbox.close()


class SlowSender:
    """Each send takes `seconds` on a stepped monotonic clock; records the timeout it was given."""

    def __init__(self, seconds: float) -> None:
        self.now, self.seconds = 0.0, seconds
        self.timeouts: list[float | None] = []

    def send(self, event_id: str, body: str, *, timeout: float | None = None) -> None:
        self.timeouts.append(timeout)
        self.now += self.seconds


def test_a_try_within_a_budget_sends_in_order_until_the_budget_is_spent() -> None:
    clock = ManualClock()
    fake, sid = FakeProduct(clock), str(uuid.uuid4())
    for number, change in enumerate([ChangeKind.ACTIVATED, ChangeKind.SUSPENDED, ChangeKind.REINSTATED]):
        fake.notify(change, Subscription(id=sid, status=Status.SUBSCRIBED), operation_id=f"op-{number}")
    sender = SlowSender(seconds=1.5)
    sending = Dispatcher(fake, sender, clock, monotonic=lambda: sender.now)
    report = sending.dispatch_subscription(sid, budget_seconds=2.0)
    assert (report.delivered, report.failed, report.waiting) == (2, 0, 1)
    assert sender.timeouts == [2.0, 0.5]  # each send gets what is left of the budget
    assert [e.status for e in fake.events(sid)] == ["delivered", "delivered", "pending"]
    assert sid in {listing.subscription_id for listing in fake.listings()}  # the next pass unlists it
