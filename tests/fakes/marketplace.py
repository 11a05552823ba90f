"""InProcessMarketplaceApi: the MarketplaceApi port straight on the sandbox's core, no HTTP.

It is the fake the service's unit tests use, and tests/contract holds it to the same
assertions as HttpMarketplaceApi talking to the sandbox over loopback. Both turn the
marketplace's JSON into domain values with the same `lifecycle.parsing` functions and
map refusals onto the same errors (`lifecycle.marketplace.responses.rejected`).

Faults injected with `marketplace.inject(...)` reach this fake as they reach the HTTP
adapter *after its retries*: each call takes up to `attempts` matching faults; a 429
or 5xx on every attempt raises MarketplaceUnavailable, a 4xx fault raises its
MarketplaceRejected, a delay is ignored (unit tests do not wait). Every call is
recorded in `calls` as (method name, arguments) for assertions.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import unquote

from lifecycle.domain.fingerprint import ListItem
from lifecycle.domain.model import Operation, Plan, ResolvedPurchase, Subscription
from lifecycle.errors import MarketplaceUnavailable
from lifecycle.marketplace.responses import rejected
from lifecycle.parsing import parse_listed_page, parse_operation, parse_plan, parse_resolved, parse_subscription
from lifecycle.sandbox.errors import SandboxError
from lifecycle.sandbox.marketplace import PARTNER, Marketplace

_PREFIX = "/api/saas/subscriptions"  # the paths faults are matched against, as over HTTP
T = TypeVar("T")


class InProcessMarketplaceApi:
    """The Fulfillment API as the publisher sees it, served by an in-memory `Marketplace`."""

    def __init__(self, marketplace: Marketplace, *, attempts: int = 3) -> None:
        self.marketplace = marketplace
        self.attempts = attempts
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def resolve(self, marketplace_token: str) -> ResolvedPurchase:
        # The port takes the token as it appeared in the landing page's URL: decoded once, as over HTTP.
        token = unquote(marketplace_token.strip())
        return parse_resolved(self._do("resolve", (marketplace_token,), "POST", f"{_PREFIX}/resolve",
                                       lambda: self.marketplace.resolve(token)))

    def activate(self, subscription_id: str, plan_id: str, quantity: int | None = None) -> None:
        self._do("activate", (subscription_id, plan_id, quantity), "POST", f"{_PREFIX}/{subscription_id}/activate",
                 lambda: self.marketplace.activate(subscription_id, plan_id))

    def list_subscriptions(self) -> Iterator[list[ListItem]]:
        continuation: str | None = None
        while True:
            items, continuation = self._do("list_subscriptions", (), "GET", _PREFIX,
                                           functools.partial(self.marketplace.list_page, continuation))
            if items:
                yield parse_listed_page(items)
            if not continuation:
                return

    def get_subscription(self, subscription_id: str) -> Subscription:
        found = self._do("get_subscription", (subscription_id,), "GET", f"{_PREFIX}/{subscription_id}",
                         lambda: self.marketplace.get(subscription_id))
        return parse_subscription(found, subscription_id)

    def list_available_plans(self, subscription_id: str) -> list[Plan]:
        plans = self._do("list_available_plans", (subscription_id,), "GET",
                         f"{_PREFIX}/{subscription_id}/listAvailablePlans",
                         lambda: self.marketplace.list_available_plans(subscription_id))
        return [parse_plan(plan) for plan in plans]

    def change_plan(self, subscription_id: str, plan_id: str) -> str:
        operation = self._do("change_plan", (subscription_id, plan_id), "PATCH", f"{_PREFIX}/{subscription_id}",
                             lambda: self.marketplace.change_plan(subscription_id, plan_id, source=PARTNER))
        return str(operation["id"])

    def change_quantity(self, subscription_id: str, quantity: int) -> str:
        operation = self._do("change_quantity", (subscription_id, quantity), "PATCH", f"{_PREFIX}/{subscription_id}",
                             lambda: self.marketplace.change_quantity(subscription_id, quantity, source=PARTNER))
        return str(operation["id"])

    def delete_subscription(self, subscription_id: str) -> str:
        operation = self._do("delete_subscription", (subscription_id,), "DELETE", f"{_PREFIX}/{subscription_id}",
                             lambda: self.marketplace.delete(subscription_id, source=PARTNER))
        return str(operation["id"])

    def list_operations(self, subscription_id: str) -> list[Operation]:
        operations = self._do("list_operations", (subscription_id,), "GET", f"{_PREFIX}/{subscription_id}/operations",
                              lambda: self.marketplace.operations(subscription_id))
        return [parse_operation(operation, subscription_id) for operation in operations]

    def get_operation(self, subscription_id: str, operation_id: str) -> Operation:
        operation = self._do("get_operation", (subscription_id, operation_id), "GET",
                             f"{_PREFIX}/{subscription_id}/operations/{operation_id}",
                             lambda: self.marketplace.get_operation(subscription_id, operation_id))
        return parse_operation(operation, subscription_id)

    def update_operation(self, subscription_id: str, operation_id: str, *, success: bool) -> None:
        status = "Success" if success else "Failure"
        self._do("update_operation", (subscription_id, operation_id, success), "PATCH",
                 f"{_PREFIX}/{subscription_id}/operations/{operation_id}",
                 lambda: self.marketplace.patch_operation(subscription_id, operation_id, status))

    def _do(self, name: str, args: tuple[Any, ...], method: str, path: str, call: Callable[[], T]) -> T:
        self.calls.append((name, args))
        status: int | None = None
        for _ in range(self.attempts):
            fault = self.marketplace.faults.take(method, path)
            status = fault.status if fault is not None else None
            if status is None:
                break
            if status != 429 and status < 500:
                raise rejected(status, f"HTTP {status}: injected fault")
        else:
            raise MarketplaceUnavailable(f"{method} {path} failed after {self.attempts} attempts", status=status)
        try:
            return call()
        except SandboxError as error:
            raise rejected(error.status, f"HTTP {error.status}: {error.code}: {error.message}") from None
