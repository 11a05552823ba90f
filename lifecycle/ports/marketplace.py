"""The marketplace port: the SaaS Fulfillment API v2."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from lifecycle.domain.fingerprint import ListItem
from lifecycle.domain.model import Operation, Plan, ResolvedPurchase, Subscription


class MarketplaceApi(Protocol):
    """The SaaS Fulfillment API v2. Errors come from the tree in `lifecycle.errors`."""

    def resolve(self, marketplace_token: str) -> ResolvedPurchase: ...

    def activate(self, subscription_id: str, plan_id: str, quantity: int | None = None) -> None: ...

    def list_subscriptions(self) -> Iterator[list[ListItem]]:
        """Page by page, following `@nextLink` until it is absent; each item is fingerprinted
        and checked as it is read, and parsed whole only when asked (`Listed.parse`); an item
        that cannot be read comes as `Unreadable`, never as an error for the whole page."""
        ...

    def get_subscription(self, subscription_id: str) -> Subscription: ...

    def list_available_plans(self, subscription_id: str) -> list[Plan]: ...

    def change_plan(self, subscription_id: str, plan_id: str) -> str:
        """PATCH the plan; the operation id from `Operation-Location`."""
        ...

    def change_quantity(self, subscription_id: str, quantity: int) -> str: ...

    def delete_subscription(self, subscription_id: str) -> str: ...

    def list_operations(self, subscription_id: str) -> list[Operation]: ...

    def get_operation(self, subscription_id: str, operation_id: str) -> Operation: ...

    def update_operation(self, subscription_id: str, operation_id: str, *, success: bool) -> None: ...
