"""An in-memory product port: events per subscription, in order, each id once (as TableOutbox)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from lifecycle.domain.history import ChangeKind
from lifecycle.domain.model import Subscription
from lifecycle.product.events import build_event


class FakeProduct:
    def __init__(self) -> None:
        self.bodies: dict[str, list[dict[str, object]]] = {}
        self._ids: set[str] = set()

    def notify(self, change: ChangeKind, subscription: Subscription, *, operation_id: str) -> None:
        event = build_event(change, subscription, operation_id=operation_id, at=datetime.now(UTC))
        if event.id in self._ids:
            return
        self._ids.add(event.id)
        self.bodies.setdefault(subscription.id, []).append(json.loads(event.body))

    def types(self, subscription_id: str) -> list[str]:
        return [str(body["type"]) for body in self.bodies.get(subscription_id, [])]
