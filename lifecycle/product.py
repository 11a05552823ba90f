"""Product adapters. Without a configured product URL the worker tells no one."""

from __future__ import annotations

from lifecycle.domain.history import ChangeKind
from lifecycle.domain.model import Subscription


class NoopProduct:
    """The default product port: accepts every notification and does nothing."""

    def notify(self, change: ChangeKind, subscription: Subscription, *, operation_id: str) -> None:
        return None
