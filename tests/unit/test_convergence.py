"""Property: any interleaving of duplicates and reorderings of a valid history converges.

The sandbox's core plays a random valid lifecycle (its changes auto-accepted, so every
operation is final when it is delivered, as after an outage); the processing service
then sees those deliveries in a random order, some several times. Whatever the order,
our state ends equal to the marketplace's truth, and each operation is applied once.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any, Protocol

from hypothesis import given, settings
from hypothesis import strategies as st

from lifecycle.clock import SystemClock
from lifecycle.domain.history import Outcome
from lifecycle.parsing import parse_subscription, parse_webhook
from lifecycle.sandbox import ManualClock
from lifecycle.sandbox.marketplace import Marketplace
from lifecycle.services.processing import ProcessingService
from tests.fakes.marketplace import InProcessMarketplaceApi
from tests.fakes.store import FakeSubscriptionStore

COMPARED = ("status", "plan_id", "quantity", "term", "offer_id")
PLANS = {"team": (1, 10), "business": (5, 50)}


class Advancing(Protocol):
    """The part of a clock `play` needs: a manual clock, or one that lets the caller decide."""

    def advance(self, seconds: float) -> object: ...


def play(market: Marketplace, clock: Advancing, sid: str, rng: random.Random, steps: int) -> list[dict[str, Any]]:
    """A random valid lifecycle; returns its operations in the order they happened."""
    operations = []
    for _ in range(steps):
        truth = market.get(sid)
        status = truth["saasSubscriptionStatus"]
        if status == "Unsubscribed":
            break
        plan, quantity = truth["planId"], truth.get("quantity")
        low, high = PLANS[plan]
        choices: list[tuple[str, Any]] = []
        if status == "Subscribed":
            assert quantity is not None
            other = "business" if plan == "team" else "team"
            if PLANS[other][0] <= quantity <= PLANS[other][1]:
                choices.append(("change_plan", other))
            choices += [("change_quantity", q) for q in (low, high, (low + high) // 2) if q != quantity]
            choices += [("suspend", None), ("renew", None)]
        if status == "Suspended":
            choices.append(("reinstate", None))
        if rng.random() < 0.05:
            choices.append(("unsubscribe", None))
        action, argument = rng.choice(choices)
        method = getattr(market, action)
        operation = method(sid, argument, deliver=False) if argument is not None else method(sid, deliver=False)
        operations.append(operation)
        clock.advance(11)  # past the 10-second window: pending changes are auto-accepted
    return operations


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), steps=st.integers(1, 12), duplicates=st.integers(0, 6))
def test_any_order_with_duplicates_converges_to_the_truth(seed: int, steps: int, duplicates: int) -> None:
    rng = random.Random(seed)
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    market = Marketplace(clock=clock, auto_accept_seconds=10.0)
    store = FakeSubscriptionStore()
    service = ProcessingService(store, InProcessMarketplaceApi(market), _Silent(), SystemClock())
    sid = str(market.purchase("contoso-seats", "team", 5, activated=True)[0]["id"])
    operations = play(market, clock, sid, rng, steps)
    deliveries = operations + [rng.choice(operations) for _ in range(duplicates)]
    rng.shuffle(deliveries)

    outcomes = [service.process(parse_webhook(market.webhook_payload(str(op["id"])))).outcome for op in deliveries]

    snapshot = store.load(sid)
    assert snapshot is not None
    ours, truth = snapshot.subscription, parse_subscription(market.get(sid))
    assert {f: getattr(ours, f) for f in COMPARED} == {f: getattr(truth, f) for f in COMPARED}
    assert outcomes.count(Outcome.DUPLICATE) == len(deliveries) - len(operations)


class _Silent:
    def notify(self, *args: Any, **kwargs: Any) -> None:
        return None
