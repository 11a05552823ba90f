"""The product ports: the publisher's product, told of changes and asked to judge proposed ones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from lifecycle.domain.events import ChangePlan, ChangeQuantity
from lifecycle.domain.history import ChangeKind
from lifecycle.domain.model import Subscription


class Product(Protocol):
    """The publisher's own SaaS product, told of every applied change."""

    def notify(self, change: ChangeKind, subscription: Subscription, *, operation_id: str) -> None: ...


@dataclass(frozen=True, slots=True)
class ProductAnswer:
    """The product's verdict on a proposed plan or quantity change."""

    accept: bool
    reason: str = ""


class ProductVeto(Protocol):
    """The publisher's product, asked inside the webhook's window whether it accepts a change."""

    def review(
        self, event: ChangePlan | ChangeQuantity, subscription: Subscription, *, timeout: float
    ) -> ProductAnswer:
        """Its answer within `timeout` seconds, or the configured default; never raises."""
        ...
