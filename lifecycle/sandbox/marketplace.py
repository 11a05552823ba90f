"""The marketplace's commands: purchases, the publisher's calls, and what customers do.

Publisher-facing calls follow the Fulfillment API's rules (operations: see
`lifecycle.sandbox.operations`). Marketplace-side actions are what customers, CSP
partners and billing do: `suspend`, `renew` and `unsubscribe` change the truth at once
(their operation is Succeeded); `reinstate`, `change_plan` and `change_quantity` wait
InProgress for the publisher's answer or the auto-accept. Each returns its operation
and, unless `deliver=False` (a delivery Microsoft never made), hands it to the
notifier after the lock is released, so a publisher that calls the API while handling
the webhook never waits on us.
"""

from __future__ import annotations

import copy
from datetime import timedelta

from lifecycle.sandbox import catalog, shapes, subscriptions, tokens
from lifecycle.sandbox.clock import TERM_MONTHS
from lifecycle.sandbox.errors import bad_request
from lifecycle.sandbox.records import Json
from lifecycle.sandbox.state import MarketplaceState

AZURE = "Azure"  # started in the marketplace: customer, CSP partner, billing
PARTNER = "Partner"  # started by the publisher's own API call


class Marketplace(MarketplaceState):
    """Microsoft's side of the SaaS fulfilment contract (state and queries: `MarketplaceState`)."""

    # -- purchases -------------------------------------------------------------------

    def purchase(
        self,
        offer_id: str,
        plan_id: str,
        quantity: int | None = None,
        *,
        activated: bool = False,
        beneficiary_tenant: str | None = None,
        purchaser_tenant: str | None = None,
        csp: bool = False,
        is_test: bool = False,
        free_trial: bool = False,
        term_unit: str = "P1M",
        auto_renew: bool = True,
    ) -> tuple[Json, str]:
        """A customer buys a plan: the new subscription and its landing-page token."""
        plan = catalog.find_plan(offer_id, plan_id)
        if plan is None:
            raise bad_request(f"Plan {plan_id!r} is not part of offer {offer_id!r}", "planId")
        problem = catalog.quantity_problem(plan, quantity)
        if problem:
            raise bad_request(problem, "quantity")
        if term_unit not in TERM_MONTHS:
            raise bad_request(f"Unknown term unit {term_unit!r}", "termUnit")
        if free_trial and not plan["hasFreeTrials"]:
            raise bad_request(f"Plan {plan_id!r} has no free trial", "isFreeTrial")
        beneficiary = beneficiary_tenant or shapes.new_id()
        # A CSP partner buys from its own tenant on behalf of the customer's.
        purchaser = purchaser_tenant or (shapes.new_id() if csp else beneficiary)
        with self._lock:
            now = self._settle()
            subscription = shapes.new_subscription(
                publisher_id=self.publisher_id,
                offer_id=offer_id,
                plan_id=plan_id,
                quantity=quantity,
                beneficiary_tenant=beneficiary,
                purchaser_tenant=purchaser,
                csp=csp,
                is_test=is_test,
                free_trial=free_trial,
                term_unit=term_unit,
                auto_renew=auto_renew,
                status="Subscribed" if activated else "PendingFulfillmentStart",
                now=now,
            )
            if activated:
                subscriptions.start_term(subscription, now)
            self._subscriptions[subscription["id"]] = subscription
            token = tokens.landing_page_token()
            self._tokens[token] = (subscription["id"], now + timedelta(seconds=self.token_ttl_seconds))
            return copy.deepcopy(subscription), token

    def resolve(self, token: str) -> Json:
        """The landing-page token's subscription; the token must arrive URL-decoded."""
        with self._lock:
            now = self._settle()
            found = self._tokens.get(token)
            if found is None or found[1] <= now:
                raise bad_request("The marketplace token is invalid or has expired", "x-ms-marketplace-token")
            return shapes.resolved(self._subscriptions[found[0]])

    def activate(self, subscription_id: str, plan_id: str | None = None) -> None:
        """Activate a pending purchase; idempotent once Subscribed on the same plan."""
        with self._lock:
            now = self._settle()
            subscription = self._get(subscription_id)
            if plan_id is not None and plan_id != subscription["planId"]:
                raise bad_request(f"Plan {plan_id!r} is not the subscription's plan", "planId")
            status = subscription["saasSubscriptionStatus"]
            if status == "Subscribed" or subscription_id in self._activations:
                return
            if status != "PendingFulfillmentStart":
                raise bad_request(f"Subscription is {status}; only PendingFulfillmentStart can be activated")
            if self.activation_delay_seconds > 0:
                # Microsoft's activation is eventually consistent: reads lag behind for a while.
                self._activations[subscription_id] = now + timedelta(seconds=self.activation_delay_seconds)
            else:
                self._complete_activation(subscription, now)

    # -- changes and operations ------------------------------------------------------

    def change_plan(self, subscription_id: str, plan_id: str, *, source: str = AZURE, deliver: bool = True) -> Json:
        """A plan change, InProgress until acknowledged, rejected or auto-accepted."""
        with self._lock:
            self._settle()
            subscription = self._get(subscription_id)
            target = subscriptions.check_plan_change(subscription, plan_id)
            operation = self._start(subscription, "ChangePlan", source, plan_id=target)
        return self._notify(operation, deliver)

    def change_quantity(
        self, subscription_id: str, quantity: int, *, source: str = AZURE, deliver: bool = True
    ) -> Json:
        """A seat change within the current plan's bounds; pending like a plan change."""
        with self._lock:
            self._settle()
            subscription = self._get(subscription_id)
            target = subscriptions.check_quantity_change(subscription, quantity)
            operation = self._start(subscription, "ChangeQuantity", source, quantity=target)
        return self._notify(operation, deliver)

    def patch_operation(self, subscription_id: str, operation_id: str, status: object) -> None:
        """The publisher's acknowledgement: returns on 200, raises SandboxError otherwise."""
        with self._lock:
            self._settle()
            self._get(subscription_id)
            entry = self._book.find(subscription_id, operation_id)
            # The publisher may PATCH right after answering the webhook, a hair before our sender
            # has read that answer: wait for it briefly. A PATCH sent from inside the webhook
            # handler keeps the answer from coming, so it is still caught as a protocol error.
            self._delivered.wait_for(lambda: entry.in_flight == 0, timeout=self.protocol_grace_seconds)
            self._book.patch(subscription_id, operation_id, status, self._settle())

    def delete(self, subscription_id: str, *, source: str = PARTNER, deliver: bool = True) -> Json:
        """The publisher cancels (DELETE): Unsubscribed at once."""
        return self.unsubscribe(subscription_id, source=source, deliver=deliver)

    def suspend(self, subscription_id: str, *, source: str = AZURE, deliver: bool = True) -> Json:
        """Payment failed: Suspended at once."""
        return self._immediate(subscription_id, "Suspend", source, deliver)

    def renew(self, subscription_id: str, *, source: str = AZURE, deliver: bool = True) -> Json:
        """The term ends and auto-renew is on: the next term starts at once."""
        return self._immediate(subscription_id, "Renew", source, deliver)

    def unsubscribe(self, subscription_id: str, *, source: str = AZURE, deliver: bool = True) -> Json:
        """Cancelled (or suspended too long): Unsubscribed at once, for good."""
        return self._immediate(subscription_id, "Unsubscribe", source, deliver)

    def reinstate(self, subscription_id: str, *, source: str = AZURE, deliver: bool = True) -> Json:
        """Payment fixed: InProgress; Subscribed once acknowledged or auto-accepted."""
        with self._lock:
            self._settle()
            subscription = self._get(subscription_id)
            subscriptions.require_status(subscription, "Reinstate")
            operation = self._start(subscription, "Reinstate", source)
        return self._notify(operation, deliver)

    def redeliver(self, operation_id: str) -> Json:
        """Send an operation's webhook again (the same payload, as Microsoft's retries do)."""
        with self._lock:
            operation = self._book.entry(operation_id).copy()
        return self._notify(operation, True)

    # -- internals -------------------------------------------------------------------

    def _immediate(self, subscription_id: str, action: str, source: str, deliver: bool) -> Json:
        with self._lock:
            now = self._settle()
            subscription = self._get(subscription_id)
            subscriptions.require_status(subscription, action)
            if action == "Renew" and not subscription["autoRenew"]:
                raise bad_request("Auto-renew is off: the term ends with an Unsubscribe", "autoRenew")
            operation = self._start(subscription, action, source, final=True)
            if action == "Renew":
                subscriptions.renew_term(subscription, now)
            else:
                subscription["saasSubscriptionStatus"] = "Suspended" if action == "Suspend" else "Unsubscribed"
                self._activations.pop(subscription_id, None)
                subscriptions.touch(subscription, now)
        return self._notify(operation, deliver)

    def _start(
        self,
        subscription: Json,
        action: str,
        source: str,
        *,
        plan_id: str | None = None,
        quantity: int | None = None,
        final: bool = False,
    ) -> Json:
        """Create the operation and its webhook payload (the subscription as it is now)."""
        now = self.clock.now()
        status = "Succeeded" if final else "InProgress"
        operation = shapes.new_operation(
            subscription, action, status=status, now=now, plan_id=plan_id, quantity=quantity
        )
        payload = shapes.webhook_payload(operation, subscription, source)
        return self._book.add(operation, payload, source, now).copy()

    def _notify(self, operation: Json, deliver: bool) -> Json:
        if deliver and self.notifier is not None:
            self.notifier(str(operation["id"]))
        return operation
