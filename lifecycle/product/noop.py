"""The default product port: no product URL is configured, so nobody is told."""

from __future__ import annotations

from lifecycle.domain.history import ChangeKind
from lifecycle.domain.model import Subscription


class NoopProduct:
    """Accepts every notification and does nothing."""

    def notify(self, change: ChangeKind, subscription: Subscription, *, operation_id: str) -> None:
        return None
