"""A crash between our commit and the product event: the redelivery writes the event, once."""

from __future__ import annotations

from typing import Any

import pytest

from lifecycle.clock import SystemClock
from lifecycle.domain.history import ChangeKind, Outcome
from lifecycle.domain.model import Subscription
from lifecycle.errors import StorageUnavailable
from lifecycle.parsing import parse_webhook
from lifecycle.sandbox.marketplace import Marketplace
from lifecycle.services.processing import ProcessingService
from tests.fakes.marketplace import InProcessMarketplaceApi
from tests.fakes.product import FakeProduct
from tests.fakes.store import FakeSubscriptionStore


class CrashingOnce(FakeProduct):
    """The outbox write fails the first time: the process "died" after its commit."""

    def __init__(self) -> None:
        super().__init__()
        self.crashes = 1

    def notify(self, change: ChangeKind, subscription: Subscription, *, operation_id: str) -> None:
        if self.crashes:
            self.crashes -= 1
            raise StorageUnavailable("the process died before the outbox write")
        super().notify(change, subscription, operation_id=operation_id)


def setup() -> tuple[Marketplace, ProcessingService, CrashingOnce, FakeSubscriptionStore, str]:
    market = Marketplace(auto_accept_seconds=None)
    store, product = FakeSubscriptionStore(), CrashingOnce()
    service = ProcessingService(store, InProcessMarketplaceApi(market), product, SystemClock())
    bought, _ = market.purchase("contoso-seats", "team", 5, activated=True)
    return market, service, product, store, str(bought["id"])


def deliver(market: Marketplace, service: ProcessingService, op: dict[str, Any]) -> Outcome:
    return service.process(parse_webhook(market.webhook_payload(str(op["id"])))).outcome


def test_the_redelivery_of_an_applied_change_writes_its_missing_event() -> None:
    market, service, product, store, sid = setup()
    product.crashes = 0
    deliver(market, service, market.change_quantity(sid, 6, deliver=False))  # known here, told
    told = product.types(sid)
    product.crashes = 1
    op = market.suspend(sid, deliver=False)
    with pytest.raises(StorageUnavailable):  # the message is not completed: it comes back
        deliver(market, service, op)
    assert product.types(sid) == told
    assert store.delivery(sid, op["id"]) is not None  # the state change itself was committed
    assert deliver(market, service, op) is Outcome.DUPLICATE
    assert product.types(sid) == [*told, "subscription.suspended"]
    assert deliver(market, service, op) is Outcome.DUPLICATE
    assert product.types(sid) == [*told, "subscription.suspended"]


def test_a_redelivery_after_a_later_change_tells_nothing_again() -> None:
    market, service, product, _, sid = setup()
    product.crashes = 0
    deliver(market, service, market.change_quantity(sid, 6, deliver=False))
    first = market.change_quantity(sid, 7, deliver=False)
    deliver(market, service, first)
    deliver(market, service, market.suspend(sid, deliver=False))
    told = list(product.bodies[sid])
    assert deliver(market, service, first) is Outcome.DUPLICATE
    assert product.bodies[sid] == told
