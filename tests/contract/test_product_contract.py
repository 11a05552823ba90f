"""The product port: the in-memory fake and TableOutbox on Azurite keep the same promises."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator

import pytest

from lifecycle.domain.history import ChangeKind
from lifecycle.domain.model import Status, Subscription
from lifecycle.product.outbox import TableOutbox
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
