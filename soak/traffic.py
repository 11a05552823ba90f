"""Random valid lifecycles, played on the sandbox's marketplace as customers and billing would.

Each step picks a subscription and an action its status allows: plan and seat changes
inside the catalog's bounds, suspend, reinstate, renew, unsubscribe (rarely: it is
final), and now and then a seat change above the plan's maximum, forced past the
marketplace's own checks, that our webhook must refuse. A subscription with a change
still waiting for an answer gets no new one (the marketplace serialises them).
Operations are made without delivery: the soak delivers them itself, with faults.
"""

from __future__ import annotations

import random
from typing import Any, cast

from lifecycle.sandbox import Marketplace, catalog
from lifecycle.sandbox.control import Controls, control
from lifecycle.sandbox.errors import SandboxError
from lifecycle.sandbox.marketplace import AZURE

Json = dict[str, Any]
SEATS_OFFER = "contoso-seats"
FLAT_OFFER = "contoso-flat"


class Traffic:
    """Purchases and then one operation per `step()`; deterministic for a given seed."""

    def __init__(self, marketplace: Marketplace, controls: Controls, rng: random.Random,
                 rejected_rate: float) -> None:
        self._market = marketplace
        self._controls = controls
        self._rng = rng
        self._rejected_rate = rejected_rate
        self.subscription_ids: list[str] = []
        self.rejected_on_purpose: set[str] = set()

    def purchase(self, count: int) -> None:
        """Most bought and activated; a few on flat-rate plans; a few left pending activation."""
        for _ in range(count):
            roll = self._rng.random()
            if roll < 0.15:
                plan = self._rng.choice(["basic", "standard", "premium"])
                subscription, _ = self._market.purchase(FLAT_OFFER, plan, activated=roll > 0.02)
            else:
                plan, low, high = self._rng.choice([("team", 1, 10), ("business", 5, 50)])
                subscription, _ = self._market.purchase(SEATS_OFFER, plan, self._rng.randint(low, high),
                                                        activated=roll > 0.17)
            self.subscription_ids.append(str(subscription["id"]))

    def step(self) -> Json | None:
        """One operation on a random subscription, or None if the one picked can do nothing now."""
        sid = self._rng.choice(self.subscription_ids)
        if self._market.operations(sid):
            return None
        truth = self._market.get(sid)
        choices = self._choices(truth)
        if not choices:
            return None
        name, argument = self._rng.choice(choices)
        try:
            return self._do(sid, name, argument)
        except SandboxError:
            return None  # the marketplace refused (e.g. a plan the seats no longer fit): no event

    def _choices(self, truth: Json) -> list[tuple[str, Any]]:
        status = truth["saasSubscriptionStatus"]
        rare_end = [("unsubscribe", None)] if self._rng.random() < 0.03 else []
        if status == "Suspended":
            return [("reinstate", None), *rare_end]
        if status == "PendingFulfillmentStart":
            return rare_end
        if status != "Subscribed":
            return []
        choices: list[tuple[str, Any]] = [("suspend", None), ("renew", None), *rare_end]
        plans = [p for p in catalog.plans(truth["offerId"]) if p["planId"] != truth["planId"]]
        quantity = truth.get("quantity")
        choices += [("change_plan", p["planId"]) for p in plans
                    if catalog.quantity_problem(p, quantity) is None]
        plan = catalog.find_plan(truth["offerId"], truth["planId"])
        if plan is not None and plan["isPricePerSeat"]:
            low, high = plan["minQuantity"], plan["maxQuantity"]
            seats = {low, min(high, 50), self._rng.randint(low, min(high, 50))} - {quantity}
            choices += [("change_quantity", q) for q in sorted(seats)] * 2
            if self._rng.random() < self._rejected_rate * 4:  # forced: one choice among about four
                choices.append(("force_quantity", high + self._rng.randint(1, 20)))
        return choices

    def _do(self, sid: str, name: str, argument: Any) -> Json:
        market = self._market
        if name == "change_plan":
            return market.change_plan(sid, argument, source=AZURE, deliver=False)
        if name == "change_quantity":
            return market.change_quantity(sid, argument, source=AZURE, deliver=False)
        if name == "force_quantity":
            body = {"quantity": argument, "force": True, "deliver": False}
            operation = cast(Json, control(self._controls, "POST", f"/subscriptions/{sid}/change-quantity", body).body)
            self.rejected_on_purpose.add(str(operation["id"]))
            return operation
        operation = getattr(market, name)(sid, deliver=False)
        return dict(operation)
