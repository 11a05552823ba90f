"""What happened to each operation, kept for tests and for the person at the CLI.

Every PATCH the publisher sent, every webhook delivery attempt, and the final decision
with who made it. A PATCH that arrives while the operation's webhook is still waiting
for its HTTP response is a protocol error (Microsoft's emulator flags it too).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

Json = dict[str, Any]


class Decider(StrEnum):
    """Who made an operation final."""

    PUBLISHER_ACK = "publisher-ack"  # PATCH Success or Failure
    PUBLISHER_4XX = "publisher-4xx"  # the webhook was answered 4xx: a rejection
    AUTO_ACCEPT = "auto-accept"  # nobody answered in time: the change stands
    MARKETPLACE = "marketplace"  # notify-only: final the moment it happened


@dataclass(frozen=True, slots=True)
class PatchReceived:
    """One PATCH of the operation by the publisher, and what it was answered."""

    status: str  # as sent: "Success", "Failure", or whatever else arrived
    at: datetime
    answer: int  # the HTTP status the sandbox answered


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    """One POST of the operation's webhook."""

    status: int | None  # None: no answer (connection refused, timeout)
    elapsed: float
    at: datetime
    error: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class OperationRecord:
    """A snapshot of one operation's story."""

    operation_id: str
    subscription_id: str
    action: str
    source: str
    status: str
    patches: tuple[PatchReceived, ...]
    deliveries: tuple[DeliveryAttempt, ...]
    decided_by: Decider | None
    decided_at: datetime | None
    protocol_errors: tuple[str, ...]


@dataclass(slots=True, kw_only=True)
class Entry:
    """One operation as the sandbox tracks it; mutable, guarded by the marketplace's lock."""

    operation: Json
    payload: Json  # the webhook body, fixed at creation like Microsoft's retries
    source: str
    deadline: datetime | None = None  # auto-accept time while pending
    in_flight: int = 0  # webhook attempts still waiting for their response
    patches: list[PatchReceived] = field(default_factory=list)
    deliveries: list[DeliveryAttempt] = field(default_factory=list)
    decided_by: Decider | None = None
    decided_at: datetime | None = None
    protocol_errors: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.operation["id"])

    @property
    def action(self) -> str:
        return str(self.operation["action"])

    @property
    def pending(self) -> bool:
        return self.operation["status"] in ("NotStarted", "InProgress")

    def decide(self, status: str, by: Decider, now: datetime, error: str = "") -> None:
        self.operation["status"] = status
        if error:
            self.operation["errorMessage"] = error
        self.decided_by = by
        self.decided_at = now
        self.deadline = None

    def snapshot(self) -> OperationRecord:
        return OperationRecord(
            operation_id=self.id,
            subscription_id=str(self.operation["subscriptionId"]),
            action=self.action,
            source=self.source,
            status=str(self.operation["status"]),
            patches=tuple(self.patches),
            deliveries=tuple(self.deliveries),
            decided_by=self.decided_by,
            decided_at=self.decided_at,
            protocol_errors=tuple(self.protocol_errors),
        )

    def copy(self) -> Json:
        return copy.deepcopy(self.operation)
