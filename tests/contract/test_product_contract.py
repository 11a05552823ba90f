"""The product port: the in-memory fake and TableOutbox on Azurite keep the same promises."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.core.exceptions import ServiceRequestError
from azure.data.tables import TableClient, TableServiceClient

from lifecycle.domain.history import ChangeKind
from lifecycle.domain.model import Status, Subscription
from lifecycle.errors import ConcurrencyConflict, StorageUnavailable
from lifecycle.product.backlog import Backlog, OutboxEntry
from lifecycle.product.outbox import TableOutbox
from lifecycle.product.outbox_rows import encode
from lifecycle.sandbox import ManualClock
from tests.fakes.product import FakeProduct

Types = Callable[[str], list[str]]


@pytest.fixture(params=["fake", "table"])
def port(request: pytest.FixtureRequest, azurite_connection_string: str, table_prefix: str
         ) -> Iterator[tuple[object, Types]]:
    if request.param == "fake":
        fake = FakeProduct()
        yield fake, fake.types
        return
    outbox = TableOutbox.from_connection_string(azurite_connection_string, table_prefix, ManualClock())
    yield outbox, lambda sid: [entry.type for entry in outbox.events(sid)]
    outbox.close()


def subscription(**changes: object) -> Subscription:
    values: dict[str, object] = {"id": str(uuid.uuid4()), "plan_id": "team", "quantity": 5,
                                 "status": Status.SUBSCRIBED}
    return Subscription(**{**values, **changes})  # type: ignore[arg-type]


def test_the_same_change_of_the_same_operation_is_one_event(port: tuple[object, Types]) -> None:
    product, types = port
    sub = subscription()
    for _ in range(3):
        product.notify(ChangeKind.SUSPENDED, sub, operation_id="op-1")  # type: ignore[attr-defined]
    assert types(sub.id) == ["subscription.suspended"]


def test_events_keep_the_order_they_were_told_in(port: tuple[object, Types]) -> None:
    product, types = port
    sub = subscription()
    for number, change in enumerate([ChangeKind.ACTIVATED, ChangeKind.QUANTITY_CHANGED, ChangeKind.SUSPENDED,
                                     ChangeKind.REINSTATED, ChangeKind.UNSUBSCRIBED]):
        product.notify(change, sub, operation_id=f"op-{number}")  # type: ignore[attr-defined]
    assert types(sub.id) == ["subscription.activated", "subscription.quantityChanged", "subscription.suspended",
                             "subscription.reinstated", "subscription.unsubscribed"]


def test_subscriptions_do_not_share_a_sequence(port: tuple[object, Types]) -> None:
    product, types = port
    first, second = subscription(), subscription()
    product.notify(ChangeKind.ACTIVATED, first, operation_id="a")  # type: ignore[attr-defined]
    product.notify(ChangeKind.ACTIVATED, second, operation_id="a")  # type: ignore[attr-defined]
    assert types(first.id) == types(second.id) == ["subscription.activated"]


def test_the_outbox_keeps_the_signed_body_and_starts_pending(azurite_connection_string: str,
                                                             table_prefix: str) -> None:
    with_outbox = TableOutbox.from_connection_string(azurite_connection_string, table_prefix, ManualClock())
    sub = subscription(quantity=9)
    with_outbox.notify(ChangeKind.QUANTITY_CHANGED, sub, operation_id="op-9")
    [entry] = with_outbox.events(sub.id)
    assert (entry.status, entry.attempts, entry.sequence) == ("pending", 0, 1)
    assert json.loads(entry.body)["subscription"]["quantity"] == 9
    assert [e.event_id for e in with_outbox.pending() if e.subscription_id == sub.id] == [entry.event_id]
    with_outbox.close()


# The listing of subscriptions with pending events (what a dispatch pass reads instead of a scan).


@pytest.fixture(params=["fake", "table"])
def outbox(request: pytest.FixtureRequest, azurite_connection_string: str, table_prefix: str
           ) -> Iterator[FakeProduct | TableOutbox]:
    if request.param == "fake":
        yield FakeProduct()
        return
    table = TableOutbox.from_connection_string(azurite_connection_string, table_prefix, ManualClock())
    yield table
    table.close()


def listed(outbox: FakeProduct | TableOutbox) -> set[str]:
    return {listing.subscription_id for listing in outbox.listings()}


def deliver_all(outbox: FakeProduct | TableOutbox, subscription_id: str) -> Backlog:
    backlog = outbox.backlog(subscription_id)
    for entry in backlog.entries:
        outbox.mark_delivered(entry)
    return backlog


def test_a_subscription_told_of_a_change_is_listed_with_its_pending_events_in_order(
    outbox: FakeProduct | TableOutbox,
) -> None:
    told, silent = subscription(), subscription()
    outbox.notify(ChangeKind.SUSPENDED, told, operation_id="op-1")
    outbox.notify(ChangeKind.REINSTATED, told, operation_id="op-2")
    assert told.id in listed(outbox)
    assert silent.id not in listed(outbox)
    assert [e.type for e in outbox.backlog(told.id).entries] == ["subscription.suspended",
                                                                "subscription.reinstated"]
    assert outbox.backlog(silent.id).entries == ()


def test_a_failed_attempt_returns_the_event_as_now_stored_and_a_stale_copy_conflicts(
    outbox: FakeProduct | TableOutbox,
) -> None:
    sub = subscription()
    outbox.notify(ChangeKind.SUSPENDED, sub, operation_id="op-1")
    [read] = outbox.backlog(sub.id).entries
    retry_at = datetime(2030, 1, 1, tzinfo=UTC)

    failed = outbox.mark_failed(read, "product answered 503", retry_at)

    assert (failed.attempts, failed.last_error, failed.next_attempt_at) == (1, "product answered 503", retry_at)
    assert failed.etag != read.etag
    with pytest.raises(ConcurrencyConflict):  # the copy read before the write is stale
        outbox.mark_delivered(read)
    outbox.mark_delivered(failed)  # the returned one is current
    assert [(e.status, e.attempts) for e in outbox.events(sub.id)] == [("delivered", 2)]


def test_a_delivered_backlog_is_released_and_no_longer_listed(outbox: FakeProduct | TableOutbox) -> None:
    sub = subscription()
    outbox.notify(ChangeKind.SUSPENDED, sub, operation_id="op-1")
    [listing] = [x for x in outbox.listings() if x.subscription_id == sub.id]
    assert outbox.release(listing, deliver_all(outbox, sub.id)) is True
    assert sub.id not in listed(outbox)
    assert outbox.backlog(sub.id).entries == ()
    assert [e.status for e in outbox.events(sub.id)] == ["delivered"]  # kept: what the product was told


def test_an_event_written_after_the_backlog_was_read_keeps_the_listing(outbox: FakeProduct | TableOutbox) -> None:
    sub = subscription()
    outbox.notify(ChangeKind.SUSPENDED, sub, operation_id="op-1")
    [listing] = [x for x in outbox.listings() if x.subscription_id == sub.id]
    backlog = deliver_all(outbox, sub.id)
    outbox.notify(ChangeKind.REINSTATED, sub, operation_id="op-2")  # lands between the read and the release
    assert outbox.release(listing, backlog) is False
    assert sub.id in listed(outbox)
    assert [e.type for e in outbox.backlog(sub.id).entries] == ["subscription.reinstated"]


def test_a_listing_released_once_is_listed_again_by_the_next_event(outbox: FakeProduct | TableOutbox) -> None:
    sub = subscription()
    outbox.notify(ChangeKind.SUSPENDED, sub, operation_id="op-1")
    [listing] = [x for x in outbox.listings() if x.subscription_id == sub.id]
    assert outbox.release(listing, deliver_all(outbox, sub.id))
    outbox.notify(ChangeKind.REINSTATED, sub, operation_id="op-2")
    assert sub.id in listed(outbox)
    assert [e.sequence for e in outbox.backlog(sub.id).entries] == [2]


# TableOutbox's order of writes, with faults and interleavings injected at the SDK boundary.


class Intercepted:
    """A TableServiceClient whose table client runs `hooks[method]` once, before that method."""

    def __init__(self, service: TableServiceClient, **hooks: Callable[..., None]) -> None:
        self._service, self.hooks = service, hooks

    def create_table_if_not_exists(self, name: str) -> object:
        return _InterceptedTable(self._service.create_table_if_not_exists(name), self.hooks)

    def close(self) -> None:
        self._service.close()


class _InterceptedTable:
    def __init__(self, table: TableClient, hooks: dict[str, Callable[..., None]]) -> None:
        self._table, self._hooks = table, hooks

    def __getattr__(self, name: str) -> Any:
        real, hook = getattr(self._table, name), self._hooks.pop(name, None)
        if hook is None:
            return real

        def intercepted(*args: Any, **kwargs: Any) -> Any:
            hook(*args, **kwargs)
            return real(*args, **kwargs)
        return intercepted


def crash(*_: Any, **__: Any) -> None:
    raise ServiceRequestError("the process died here")


@pytest.fixture
def tables(azurite_connection_string: str, table_prefix: str) -> Callable[..., TableOutbox]:
    def make(**hooks: Callable[..., None]) -> TableOutbox:
        service = TableServiceClient.from_connection_string(azurite_connection_string)
        return TableOutbox(Intercepted(service, **hooks), table_prefix, ManualClock())  # type: ignore[arg-type]
    return make


def test_an_event_is_never_written_when_its_listing_could_not_be(tables: Callable[..., TableOutbox]) -> None:
    sub = subscription()
    with pytest.raises(StorageUnavailable):
        tables(upsert_entity=crash).notify(ChangeKind.SUSPENDED, sub, operation_id="op-1")
    assert tables().events(sub.id) == []


def test_a_crash_between_the_listing_and_the_event_leaves_a_listing_the_dispatcher_releases(
    tables: Callable[..., TableOutbox],
) -> None:
    sub = subscription()
    with pytest.raises(StorageUnavailable):
        tables(submit_transaction=crash).notify(ChangeKind.SUSPENDED, sub, operation_id="op-1")
    reader = tables()
    assert (sub.id in listed(reader), reader.events(sub.id)) == (True, [])
    [listing] = [x for x in reader.listings() if x.subscription_id == sub.id]
    assert reader.release(listing, reader.backlog(sub.id)) is True
    assert sub.id not in listed(reader)
    reader.notify(ChangeKind.SUSPENDED, sub, operation_id="op-1")  # the redelivery writes it after all
    assert [e.sequence for e in reader.backlog(sub.id).entries] == [1]
    assert sub.id in listed(reader)


@pytest.mark.parametrize("earlier_events", [0, 1])
def test_a_writer_whose_commit_lands_after_the_listing_was_released_lists_it_again(
    tables: Callable[..., TableOutbox], earlier_events: int,
) -> None:
    sub, dispatcher = subscription(), tables()
    for number in range(earlier_events):
        dispatcher.notify(ChangeKind.QUANTITY_CHANGED, sub, operation_id=f"early-{number}")

    def release_everything_first(*_: Any, **__: Any) -> None:
        # The writer has read head and listed the subscription; its commit is in flight while
        # a pass sees nothing pending and releases the listing (fencing head).
        [listing] = [x for x in dispatcher.listings() if x.subscription_id == sub.id]
        assert dispatcher.release(listing, deliver_all(dispatcher, sub.id)) is True

    tables(submit_transaction=release_everything_first).notify(ChangeKind.SUSPENDED, sub, operation_id="op-1")
    assert [e.type for e in dispatcher.backlog(sub.id).entries] == ["subscription.suspended"]
    assert sub.id in listed(dispatcher)


def test_a_listing_written_again_while_it_is_being_released_stays(tables: Callable[..., TableOutbox]) -> None:
    sub, writer = subscription(), tables()
    writer.notify(ChangeKind.SUSPENDED, sub, operation_id="op-1")
    # The pass has fenced head; before it deletes the listing, a writer reads the fenced head,
    # lists the subscription again and commits its event.
    releasing = tables(delete_entity=lambda *_, **__: writer.notify(ChangeKind.REINSTATED, sub,
                                                                    operation_id="op-2"))
    [listing] = [x for x in releasing.listings() if x.subscription_id == sub.id]
    assert releasing.release(listing, deliver_all(releasing, sub.id)) is False
    assert sub.id in listed(releasing)
    assert [e.type for e in releasing.backlog(sub.id).entries] == ["subscription.reinstated"]


def test_pending_events_written_before_listings_existed_are_listed_once(
    azurite_connection_string: str, table_prefix: str,
) -> None:
    sid = str(uuid.uuid4())
    service = TableServiceClient.from_connection_string(azurite_connection_string)
    table = service.create_table_if_not_exists(f"{table_prefix}outbox")
    now = ManualClock().now()
    table.create_entity(encode(OutboxEntry(subscription_id=sid, sequence=1, event_id="evt_old",
                                           type="subscription.suspended", body="{}", created_at=now)))
    outbox = TableOutbox(service, table_prefix, ManualClock())
    assert listed(outbox) == {sid}
    assert [e.event_id for e in outbox.backlog(sid).entries] == ["evt_old"]
    outbox.close()
