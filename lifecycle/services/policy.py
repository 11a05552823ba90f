"""The webhook's fast decision on ChangePlan/ChangeQuantity, made inside the request.

A 4xx answer is the marketplace's dependable reject path (a PATCH Failure after 10 s is
ignored), so the checks that can refuse a change run here, cheaply: the subscription is
known (our state, or one API call), it is not Unsubscribed, the target plan is in the
offer's catalog and the quantity within that plan's seats. When the delivery's own
snapshot of the subscription shows a plan or seats ours lacks, ours is behind and the
change is judged on a fresh GET instead. Plans are cached per subscription (private
plans differ by customer) and refetched once before a plan is called unknown. Our state
may lag the marketplace's in ways no snapshot shows (the processor runs behind the
queue), so a refusal is confirmed against a fresh GET of the subscription before it is
answered; an accept judged on a state the snapshot agrees with costs no extra call.
Anything transient raises (the webhook answers 5xx: not a rejection).

Then a change that passes these checks is put to the product's veto when one is
configured. Its budget is the smaller of its own timeout and what is left of our share of
the window (`window_seconds`, counted from the start of the check, so the API calls
already made count against it); the veto answers its configured default when time runs out.

Last, a refusal is given only while the marketplace still waits for it: the operation is
read, and one already final (auto-accepted after an earlier delivery answered 5xx or too
late) is accepted instead, so processing applies what happened rather than our record
saying "rejected" about a change the customer has.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace

from lifecycle.domain.events import ChangePlan, ChangeQuantity, Event
from lifecycle.domain.model import Plan, Status, Subscription
from lifecycle.errors import LifecycleError
from lifecycle.ports import MarketplaceApi, ProductVeto


@dataclass(frozen=True, slots=True)
class Verdict:
    accepted: bool
    reason: str = ""  # why it was refused; on an accepted verdict, the refusal that came too late
    confirmed: bool = False  # a refusal whose operation the marketplace showed pending (not merely judged)


ACCEPT = Verdict(True)


class ChangePolicy:
    """Decides whether a plan or quantity change can be honoured, from cheap facts."""

    def __init__(
        self,
        api: MarketplaceApi,
        *,
        catalog_ttl_seconds: float = 300.0,
        monotonic: Callable[[], float] = time.monotonic,
        veto: ProductVeto | None = None,
        veto_timeout_seconds: float = 2.0,
        window_seconds: float = 7.0,  # of the marketplace's 10 s: room left for the record and the enqueue
        max_cached: int = 10_000,
    ) -> None:
        self._api = api
        self._veto = veto
        self._veto_timeout = veto_timeout_seconds
        self._window = window_seconds
        self._ttl = catalog_ttl_seconds
        self._monotonic = monotonic
        # Least recently used first: a process that lives for months meets every subscription that
        # ever changed, and keeps only the `max_cached` latest catalogs.
        self._catalogs: OrderedDict[str, tuple[float, dict[str, Plan]]] = OrderedDict()
        self._max_cached = max_cached
        self._lock = threading.Lock()

    def check(self, event: Event, state: Subscription | None) -> Verdict:
        if not isinstance(event, ChangePlan | ChangeQuantity):
            return ACCEPT
        verdict = self._verdict(event, state)
        if verdict.accepted:
            return verdict
        try:
            operation = self._api.get_operation(event.subscription_id, event.operation_id)
        except LifecycleError:  # none (404), or the API cannot say now: the refusal stands, as judged
            return verdict
        if operation.status.is_final:
            return Verdict(True, f"{verdict.reason} (but the operation is {operation.status.value})")
        return replace(verdict, confirmed=True)

    def _verdict(self, event: ChangePlan | ChangeQuantity, state: Subscription | None) -> Verdict:
        started = self._monotonic()
        event = self._with_target(event)
        subscription = state or self._api.get_subscription(event.subscription_id)
        if state is not None and _behind(state, event.subscription):
            # The delivery's own snapshot (the subscription before this change) shows a plan or
            # seats ours has not caught up with: judged on ours, a change past the new plan's
            # bounds would be accepted. The truth decides instead.
            subscription = self._api.get_subscription(event.subscription_id)
        verdict = self._judge(event, subscription)
        if not verdict.accepted and subscription is state:
            # Our state lags the marketplace's while the queue has work (a plan change not yet
            # processed): a refusal is final for the customer, so it must hold against the truth.
            subscription = self._api.get_subscription(event.subscription_id)
            verdict = self._judge(event, subscription)
        if not verdict.accepted or self._veto is None:
            return verdict
        budget = min(self._veto_timeout, self._window - (self._monotonic() - started))
        answer = self._veto.review(event, subscription, timeout=budget)
        return ACCEPT if answer.accept else Verdict(False, answer.reason)

    def _judge(self, event: ChangePlan | ChangeQuantity, subscription: Subscription) -> Verdict:
        # Only Unsubscribed is refused by status. The marketplace sends changes for Subscribed
        # subscriptions only, and its reads lag an activation or a reinstatement for a while:
        # a "PendingFulfillmentStart" or "Suspended" read then is stale, and a 4xx would reject
        # a genuine change. Processing judges those statuses on the operation instead.
        if subscription.status is Status.UNSUBSCRIBED:
            return Verdict(False, "the subscription is Unsubscribed: it cannot change")
        plans, cached = self._catalog(subscription)
        if isinstance(event, ChangePlan):
            if not event.plan_id:
                return ACCEPT  # no target anywhere: nothing to judge here, processing verifies
            if event.plan_id not in plans and cached:
                plans, _ = self._catalog(subscription, fresh=True)
            if event.plan_id not in plans:
                return Verdict(False, f"plan {event.plan_id!r} is not in offer {subscription.offer_id!r}")
            target = plans[event.plan_id]
            if target.is_per_seat and subscription.quantity is not None and not target.admits(subscription.quantity):
                return Verdict(False, f"{subscription.quantity} seats do not fit plan {target.plan_id!r}")
            return ACCEPT
        plan = plans.get(subscription.plan_id)
        if plan is None or event.quantity is None:
            return ACCEPT  # the current plan left the catalog: let the marketplace's own checks stand
        if not plan.is_per_seat and plan.min_quantity is None and plan.max_quantity is None:
            return Verdict(False, f"plan {plan.plan_id!r} is flat-rate: it has no quantity")
        if not plan.admits(event.quantity):
            bounds = f"{plan.min_quantity or 0}..{plan.max_quantity if plan.max_quantity is not None else '∞'}"
            return Verdict(False, f"quantity {event.quantity} is outside plan {plan.plan_id!r}'s seats ({bounds})")
        return ACCEPT

    def _with_target(self, event: ChangePlan | ChangeQuantity) -> ChangePlan | ChangeQuantity:
        """A minimal body names no target: the operation does (one more call, within budget)."""
        if isinstance(event, ChangePlan) and event.plan_id:
            return event
        if isinstance(event, ChangeQuantity) and event.quantity is not None:
            return event
        operation = self._api.get_operation(event.subscription_id, event.operation_id)
        if isinstance(event, ChangePlan):
            return replace(event, plan_id=operation.plan_id)
        return replace(event, quantity=operation.quantity)

    def _catalog(self, subscription: Subscription, *, fresh: bool = False) -> tuple[dict[str, Plan], bool]:
        """The subscription's plans, and whether they came from the cache."""
        now = self._monotonic()
        with self._lock:
            cached = self._catalogs.get(subscription.id)
            if cached is not None:
                self._catalogs.move_to_end(subscription.id)
        if cached is not None and now - cached[0] < self._ttl and not fresh:
            return cached[1], True
        plans = {plan.plan_id: plan for plan in self._api.list_available_plans(subscription.id)}
        with self._lock:
            self._catalogs[subscription.id] = (now, plans)
            self._catalogs.move_to_end(subscription.id)
            while len(self._catalogs) > self._max_cached:
                self._catalogs.popitem(last=False)
        return plans, False


def _behind(ours: Subscription, snapshot: Subscription | None) -> bool:
    """Whether a delivery's snapshot names a plan or seats other than ours (only what it names)."""
    if snapshot is None:
        return False
    return bool(snapshot.plan_id and snapshot.plan_id != ours.plan_id) or (
        snapshot.quantity is not None and snapshot.quantity != ours.quantity)
