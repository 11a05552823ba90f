"""The activation service on fakes: resolve, provision, activate, confirm; returning visits."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from lifecycle.clock import SystemClock
from lifecycle.domain.history import Outcome
from lifecycle.domain.model import Status, Subscription
from lifecycle.errors import MarketplaceBadRequest
from lifecycle.parsing import parse_subscription
from lifecycle.sandbox.marketplace import Marketplace
from lifecycle.services.activation import ActivationResult, ActivationService, CannotActivate
from tests.fakes.marketplace import InProcessMarketplaceApi
from tests.fakes.product import FakeProduct
from tests.fakes.store import FakeSubscriptionStore


class World:
    def __init__(self, activation_delay: float = 0.0) -> None:
        self.market = Marketplace(auto_accept_seconds=None, activation_delay_seconds=activation_delay)
        self.api = InProcessMarketplaceApi(self.market)
        self.store = FakeSubscriptionStore()
        self.product = FakeProduct()
        self.sleeps: list[float] = []
        self.clock = [0.0]

        def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)
            self.clock[0] += seconds

        self.service = ActivationService(self.store, self.api, self.product, SystemClock(), confirm_seconds=2,
                                         first_wait=0.25, sleep=sleep, monotonic=lambda: self.clock[0])

    def buy(self) -> tuple[str, str]:
        subscription, token = self.market.purchase("contoso-seats", "team", 5)
        return str(subscription["id"]), token

    def ours(self, subscription_id: str) -> Subscription:
        snapshot = self.store.load(subscription_id)
        assert snapshot is not None
        return snapshot.subscription

    def activations(self) -> int:
        return sum(1 for name, _ in self.api.calls if name == "activate")


def test_a_new_purchase_is_recorded_provisioned_activated_and_confirmed() -> None:
    world = World()
    sid, token = world.buy()
    done = world.service.activate(quote(token, safe=""))  # as the landing page's query string has it
    assert (done.result, done.subscription.status) == (ActivationResult.ACTIVATED, Status.SUBSCRIBED)
    assert world.market.get(sid)["saasSubscriptionStatus"] == "Subscribed"
    assert world.product.types(sid) == ["subscription.activated"]
    assert world.product.bodies[sid][0]["subscription"]["status"] == "Subscribed"  # type: ignore[index]
    history = world.store.history(sid)
    assert [(e.source.value, e.outcome) for e in reversed(history)] == [
        ("activation", Outcome.RESYNCED), ("activation", Outcome.APPLIED)]


def test_the_term_the_activation_started_is_taken_from_the_confirming_read() -> None:
    # Before activation the marketplace has no term dates; the subscription it confirms with has them.
    world = World()
    sid, token = world.buy()
    assert world.store.load(sid) is None
    done = world.service.activate(token)
    truth = parse_subscription(world.market.get(sid))
    assert truth.term.start is not None
    assert (done.subscription.term, world.ours(sid).term) == (truth.term, truth.term)
    changed = {c.field for c in world.store.history(sid)[0].changes}
    assert {"status", "term"} <= changed


def test_a_returning_customer_is_neither_provisioned_nor_activated_again() -> None:
    world = World()
    sid, token = world.buy()
    world.service.activate(token)
    again = world.service.activate(token)
    assert again.result is ActivationResult.ALREADY_ACTIVE
    assert world.activations() == 1
    assert world.product.types(sid) == ["subscription.activated"]


def test_an_activation_the_marketplace_does_not_show_in_time_is_recorded_as_pending() -> None:
    world = World(activation_delay=3600)
    sid, token = world.buy()
    done = world.service.activate(token)
    assert done.result is ActivationResult.PENDING
    assert world.sleeps == [0.25, 0.5, 1.0, 0.25]  # doubling, cut to the 2 s budget
    [latest, _] = world.store.history(sid)
    assert (latest.outcome, latest.reason.startswith("activation sent, not yet confirmed")) == (
        Outcome.NOT_APPLIED, True)
    assert world.product.types(sid) == ["subscription.activated"]  # provisioned before billing starts


def test_a_second_visit_while_pending_confirms_without_a_second_event() -> None:
    world = World(activation_delay=3600)
    sid, token = world.buy()
    world.service.activate(token)
    world.market.activation_delay_seconds = 0
    world.market._activations.clear()  # the marketplace caught up
    world.market.activate(sid)
    done = world.service.activate(token)
    assert done.result is ActivationResult.ACTIVATED
    assert world.product.types(sid) == ["subscription.activated"]


def test_a_bad_token_is_the_marketplaces_refusal() -> None:
    with pytest.raises(MarketplaceBadRequest):
        World().service.activate("not-a-token")


def test_an_unsubscribed_purchase_cannot_be_activated() -> None:
    world = World()
    sid, token = world.buy()
    world.market.unsubscribe(sid, deliver=False)
    with pytest.raises(CannotActivate):
        world.service.activate(token)
